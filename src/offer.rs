//! The normalized offer: what every network's records become after mapping.
//!
//! This module owns the vocabulary shared by mapping, rules and the store:
//! [`Offer`], its enums, and the normalization of the values networks send
//! in many spellings (countries, operating systems, models, statuses).
//! It does no I/O and knows nothing of YAML or of any network.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One advertiser offer as offersync understands it, whatever network it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    /// The network's id of the offer; unique within one integration.
    pub external_id: String,
    pub name: String,
    pub status: OfferStatus,
    pub preview_url: Option<String>,
    pub tracking_url: Option<String>,
    pub impression_url: Option<String>,
    /// The advertiser's payout: an amount, or a percentage when `model` is revshare.
    pub payout: Option<Decimal>,
    /// ISO 4217 code, upper case.
    pub currency: Option<String>,
    pub model: Option<PayoutModel>,
    /// The models of a hybrid offer (`CPA+CPS`), in the order sent; `model`
    /// is the first. Empty for an offer of one model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<PayoutModel>,
    /// The top of a commission range (`"3.5%-6%"`): `payout` is its bottom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_max: Option<Decimal>,
    /// ISO 3166-1 alpha-2 codes the offer accepts traffic from, sorted; empty means worldwide.
    pub countries: Vec<String>,
    /// ISO 3166-1 alpha-2 codes the offer refuses traffic from, sorted.
    pub blocked_countries: Vec<String>,
    /// Normalized operating systems (`android`, `ios`, `windows`, `macos`, `linux`, ...),
    /// sorted; empty means any.
    pub os: Vec<String>,
    /// Operating systems the offer refuses, normalized like `os`, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_os: Vec<String>,
    /// Device types the offer accepts (`desktop`, `mobile`, `tablet`),
    /// sorted; empty means any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// The lowest OS version the offer accepts (`"8.0"`), as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_os_version: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    pub kpi: Option<String>,
    pub thumbnail_url: Option<String>,
    pub caps: Vec<Cap>,
    /// Payouts that differ by country, goal or OS.
    pub payouts: Vec<PayoutEntry>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The record as the network sent it: its JSON text, exactly (for XML
    /// feeds, the converted tree).
    pub raw: RawRecord,
    /// What mapping could not use and left out (an optional field's value
    /// that could not be read, unknown countries dropped); kept in the run log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The optional fields whose value the record had but mapping could not
    /// read (a payout of `1e400`), left empty: unlike a value the network
    /// sent as null or empty, this is not the network's word, so a stored
    /// campaign keeps its value there (`reconcile`). Each has its warning.
    #[serde(skip)]
    pub unreadable: Vec<&'static str>,
}

impl Offer {
    /// An active offer with nothing but an id and a name (the raw record is `null`).
    pub fn new(external_id: String, name: String) -> Self {
        Self {
            external_id,
            name,
            status: OfferStatus::Active,
            preview_url: None,
            tracking_url: None,
            impression_url: None,
            payout: None,
            currency: None,
            model: None,
            models: Vec::new(),
            payout_max: None,
            countries: Vec::new(),
            blocked_countries: Vec::new(),
            os: Vec::new(),
            blocked_os: Vec::new(),
            devices: Vec::new(),
            min_os_version: None,
            category: None,
            description: None,
            kpi: None,
            thumbnail_url: None,
            caps: Vec::new(),
            payouts: Vec::new(),
            starts_at: None,
            expires_at: None,
            raw: RawRecord::from_json("null".to_string()),
            warnings: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

/// A record's JSON text: a range of the response it came in, shared with the
/// other offers of that response rather than copied (a tree of every record
/// would cost far more memory than the offers themselves).
#[derive(Clone)]
pub struct RawRecord {
    text: Arc<str>,
    range: Range<usize>,
}

impl RawRecord {
    /// The record at `range` of a response's text (which must hold JSON there).
    pub fn new(text: Arc<str>, range: Range<usize>) -> Self {
        debug_assert!(text.get(range.clone()).is_some());
        Self { text, range }
    }

    /// A whole JSON text.
    pub fn from_json(json: String) -> Self {
        let len = json.len();
        Self::new(Arc::from(json), 0..len)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.text.get(self.range.clone()).unwrap_or("null")
    }
}

impl fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawRecord({} bytes)", self.range.len())
    }
}

impl Serialize for RawRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(self.get()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// A limit on an offer's volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// What is counted.
    pub event: CapEvent,
    /// Over which period.
    pub period: CapPeriod,
    /// The limit; `0` from a network means "no cap" and is dropped at mapping.
    #[schemars(with = "f64")]
    pub value: Decimal,
    /// The IANA time zone this cap's periods reset in, where it differs
    /// from the caps' (only caps the Integration adds have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `pause` or `continue` once reached, where it differs from the caps'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_delivery: Option<String>,
}

/// One payout that applies to part of the traffic (a country, a goal, an OS).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayoutEntry {
    pub payout: Decimal,
    /// What publishers get for this traffic: the payout × the Integration's
    /// ratio (set by rules; absent on the offer as mapped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher_payout: Option<Decimal>,
    pub currency: Option<String>,
    pub model: Option<PayoutModel>,
    pub countries: Vec<String>,
    pub os: Vec<String>,
    pub goal: Option<String>,
}

/// Whether an offer can run, as the network reports it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    /// Running: traffic is accepted.
    Active,
    /// Stopped for now by the advertiser or network.
    Paused,
    /// Needs approval (apply to run) before traffic is accepted.
    Pending,
    /// Past its end date.
    Expired,
}

/// How the advertiser pays.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, PartialOrd, Ord,
)]
pub enum PayoutModel {
    /// Cost per action (any conversion).
    #[serde(rename = "CPA", alias = "cpa")]
    Cpa,
    /// Cost per install.
    #[serde(rename = "CPI", alias = "cpi")]
    Cpi,
    /// Cost per lead.
    #[serde(rename = "CPL", alias = "cpl")]
    Cpl,
    /// Cost per sale (fixed amount).
    #[serde(rename = "CPS", alias = "cps")]
    Cps,
    /// Cost per click.
    #[serde(rename = "CPC", alias = "cpc")]
    Cpc,
    /// Cost per thousand impressions.
    #[serde(rename = "CPM", alias = "cpm")]
    Cpm,
    /// A percentage of the sale.
    #[serde(rename = "revshare", alias = "RevShare", alias = "REVSHARE")]
    RevShare,
}

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapEvent {
    Conversions,
    Clicks,
    Impressions,
    /// Money paid out (a budget).
    Payout,
}

/// The period a cap resets over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    Daily,
    Weekly,
    Monthly,
    /// Never resets.
    Total,
}

/// A value that is not one of the words an enum accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {what}; expected one of: {expected}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn unknown(what: &'static str, value: &str, expected: &'static str) -> UnknownWord {
    UnknownWord {
        what,
        value: value.to_string(),
        expected,
    }
}

/// Folds a word for lenient matching: lower case, no spaces, dashes or underscores.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl FromStr for OfferStatus {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match fold(s).as_str() {
            "active" | "live" | "running" | "approved" | "public" | "enabled" => Self::Active,
            "paused" | "inactive" | "stopped" | "disabled" | "suspended" => Self::Paused,
            "pending" | "applytorun" | "requireapproval" | "needapproval" | "private" => {
                Self::Pending
            }
            "expired" | "deleted" | "archived" | "ended" => Self::Expired,
            _ => {
                return Err(unknown(
                    "offer status",
                    s,
                    "active, paused, pending, expired",
                ));
            }
        })
    }
}

impl fmt::Display for OfferStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Pending => "pending",
            Self::Expired => "expired",
        })
    }
}

impl FromStr for PayoutModel {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match fold(s).as_str() {
            "cpa" | "cpaflat" | "cpe" | "cpr" => Self::Cpa,
            "cpi" | "install" => Self::Cpi,
            "cpl" | "lead" | "soi" | "doi" => Self::Cpl,
            "cps" | "sale" => Self::Cps,
            "cpc" | "click" => Self::Cpc,
            "cpm" => Self::Cpm,
            "revshare" | "rs" | "cpapercentage" | "percent" | "percentage" => Self::RevShare,
            _ => {
                return Err(unknown(
                    "payout model",
                    s,
                    "CPA, CPI, CPL, CPS, CPC, CPM, revshare",
                ));
            }
        })
    }
}

impl PayoutModel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpa => "CPA",
            Self::Cpi => "CPI",
            Self::Cpl => "CPL",
            Self::Cps => "CPS",
            Self::Cpc => "CPC",
            Self::Cpm => "CPM",
            Self::RevShare => "revshare",
        }
    }
}

impl fmt::Display for PayoutModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CapEvent {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match fold(s).as_str() {
            "conversions" | "conversion" | "leads" | "installs" | "actions" => Self::Conversions,
            "clicks" | "click" => Self::Clicks,
            "impressions" | "impression" => Self::Impressions,
            "payout" | "budget" | "revenue" | "money" => Self::Payout,
            _ => {
                return Err(unknown(
                    "cap event",
                    s,
                    "conversions, clicks, impressions, payout",
                ));
            }
        })
    }
}

impl FromStr for CapPeriod {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match fold(s).as_str() {
            "daily" | "day" | "1d" => Self::Daily,
            "weekly" | "week" | "7d" => Self::Weekly,
            "monthly" | "month" => Self::Monthly,
            "total" | "global" | "lifetime" | "all" | "overall" => Self::Total,
            _ => {
                return Err(unknown("cap period", s, "daily, weekly, monthly, total"));
            }
        })
    }
}

/// What a country value normalizes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountryCode {
    /// An ISO 3166-1 alpha-2 code.
    Code(String),
    /// A sentinel meaning "every country" (`ALL`, `WW`, `Worldwide`, `*`).
    Worldwide,
}

/// Normalizes a country as networks send it: ISO alpha-2 or alpha-3 in any
/// case, English names with or without spaces (`UNITEDSTATES`, `Cayman
/// Islands`, `The Netherlands`), common aliases (`UK`, `Holland`, `UAE`), and
/// the worldwide sentinels (`ALL`, `WW`, `00`, `*`...).
pub fn normalize_country(raw: &str) -> Result<CountryCode, UnknownWord> {
    let trimmed = raw.trim();
    let upper = trimmed.to_ascii_uppercase();
    match upper.as_str() {
        "ALL" | "WW" | "*" | "00" | "WORLDWIDE" | "WORLD WIDE" | "GLOBAL" | "INT" | "ANY" => {
            return Ok(CountryCode::Worldwide);
        }
        "UK" => return Ok(CountryCode::Code("GB".into())),
        "EL" => return Ok(CountryCode::Code("GR".into())),
        _ => {}
    }
    if upper.len() == 2 && ISO_ALPHA2.binary_search(&upper.as_str()).is_ok() {
        return Ok(CountryCode::Code(upper));
    }
    // Names compare as letters only: "United States", "UNITEDSTATES" and
    // "united-states" are one name. Digits are not names (numeric codes are
    // too easily an id of the network's own).
    let letters: String = trimmed
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    let known = |code: &str| ISO_ALPHA2.binary_search(&code).is_ok();
    let found = COUNTRY_ALIASES
        .iter()
        .find(|(alias, _)| *alias == letters)
        .map(|(_, code)| (*code).to_string())
        .or_else(|| {
            let name = letters.strip_prefix("the").unwrap_or(&letters);
            [letters.as_str(), name]
                .into_iter()
                .filter(|n| n.len() >= 3 && trimmed.chars().all(|c| !c.is_ascii_digit()))
                .find_map(|n| n.parse::<celes::Country>().ok())
                .map(|c| c.alpha2.to_string())
        })
        .filter(|code| known(code));
    if let Some(code) = found {
        return Ok(CountryCode::Code(code));
    }
    Err(unknown(
        "country",
        raw,
        "an ISO 3166-1 code such as US, GB, DE (alpha-2 or alpha-3), an English name, or ALL for worldwide",
    ))
}

/// Reads a hybrid model (`"CPA+CPS"`, `"CPL/CPA"`, `"cpa & revshare"`):
/// every part, in order, without repeats.
pub fn parse_models(raw: &str) -> Result<Vec<PayoutModel>, UnknownWord> {
    let mut models = Vec::new();
    for part in raw.split(['+', '/', '&', ',']).map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let model: PayoutModel = part.parse()?;
        if !models.contains(&model) {
            models.push(model);
        }
    }
    Ok(models)
}

/// Normalizes a device type: `desktop`, `mobile` or `tablet`.
pub fn normalize_device(raw: &str) -> Result<&'static str, UnknownWord> {
    Ok(match fold(raw).as_str() {
        "desktop" | "pc" | "computer" | "web" | "laptop" => "desktop",
        "mobile" | "phone" | "smartphone" | "mobilephone" | "cellphone" | "handset" => "mobile",
        "tablet" | "tab" | "pad" => "tablet",
        _ => return Err(unknown("device type", raw, "desktop, mobile, tablet")),
    })
}

/// Normalizes an operating system name to its canonical lower-case word.
pub fn normalize_os(raw: &str) -> String {
    let folded = fold(raw);
    match folded.as_str() {
        "android" | "androidos" | "googleandroid" => "android",
        "ios" | "iphone" | "ipad" | "ipados" | "appleios" => "ios",
        "windows" | "win" | "windowsphone" | "windowsdesktop" => "windows",
        "macos" | "mac" | "osx" | "macosx" => "macos",
        "linux" => "linux",
        _ => return folded,
    }
    .to_string()
}

/// Normalizes a currency: an ISO 4217 code in any case, or a common symbol.
/// The active ISO 4217 currency codes, sorted.
const ISO_4217: [&str; 160] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP",
    "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF",
    "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP",
    "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB",
    "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD",
    "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD",
    "UYU", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER",
    "ZAR", "ZMW", "ZWG", "ZWL",
];

/// Whether `code` (upper case) is an active ISO 4217 currency.
pub fn is_iso_4217(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

pub fn normalize_currency(raw: &str) -> Result<String, UnknownWord> {
    let trimmed = raw.trim();
    let code = match trimmed {
        "$" | "US$" => "USD",
        "€" => "EUR",
        "£" => "GBP",
        "¥" => "JPY",
        "₽" => "RUB",
        "₹" => "INR",
        "R$" => "BRL",
        "₺" => "TRY",
        "₩" => "KRW",
        other => other,
    };
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(unknown(
            "currency",
            raw,
            "an ISO 4217 code such as USD, EUR, GBP, or a symbol $ € £",
        ))
    }
}

/// Every ISO 3166-1 alpha-2 code assigned today, sorted (for binary search).
const ISO_ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Spellings networks use instead of alpha-2 codes.
/// Names networks use that ISO does not list (letters only, lower case).
const COUNTRY_ALIASES: &[(&str, &str)] = &[
    ("england", "GB"),
    ("scotland", "GB"),
    ("wales", "GB"),
    ("greatbritain", "GB"),
    ("britain", "GB"),
    ("holland", "NL"),
    ("uae", "AE"),
    ("emirates", "AE"),
    ("america", "US"),
    ("korea", "KR"),
    ("southkorea", "KR"),
    ("republicofkorea", "KR"),
    ("northkorea", "KP"),
    ("russia", "RU"),
    ("vietnam", "VN"),
    ("iran", "IR"),
    ("syria", "SY"),
    ("laos", "LA"),
    ("taiwan", "TW"),
    ("czechia", "CZ"),
    ("czechrepublic", "CZ"),
    ("turkey", "TR"),
    ("turkiye", "TR"),
    ("ivorycoast", "CI"),
    ("cotedivoire", "CI"),
    ("côtedivoire", "CI"),
    ("korearepublicof", "KR"),
    ("iranislamicrepublicof", "IR"),
    ("curaçao", "CW"),
    ("réunion", "RE"),
    ("macedonia", "MK"),
    ("northmacedonia", "MK"),
    ("moldova", "MD"),
    ("bolivia", "BO"),
    ("venezuela", "VE"),
    ("tanzania", "TZ"),
    ("palestine", "PS"),
    ("vatican", "VA"),
    ("vaticancity", "VA"),
    ("kosovo", "XK"),
    ("congo", "CG"),
    ("drcongo", "CD"),
    ("democraticrepublicofthecongo", "CD"),
    ("swaziland", "SZ"),
    ("eswatini", "SZ"),
    ("burma", "MM"),
    ("myanmar", "MM"),
    ("capeverde", "CV"),
    ("caboverde", "CV"),
    ("brunei", "BN"),
    ("micronesia", "FM"),
    ("hongkong", "HK"),
    ("macao", "MO"),
    ("macau", "MO"),
    ("stkitts", "KN"),
    ("saintkittsandnevis", "KN"),
    ("stlucia", "LC"),
    ("saintlucia", "LC"),
    ("stvincent", "VC"),
    ("saintvincentandthegrenadines", "VC"),
    ("trinidad", "TT"),
    ("trinidadandtobago", "TT"),
    ("bosnia", "BA"),
    // impact.com's region names, spelled as it sends them.
    ("antiguabarbuda", "AG"),
    ("bosniaherzegovina", "BA"),
    ("capverde", "CV"),
    ("dijibouti", "DJ"),
    ("democraticrepubliccongo", "CD"),
    ("cocosislands", "CC"),
    ("heardmcdonaldislands", "HM"),
    ("saotomeprincipe", "ST"),
    ("stpierremiquelon", "PM"),
    ("turkscaicosislands", "TC"),
    ("wallisfutunaislands", "WF"),
    ("bosniaandherzegovina", "BA"),
    ("unitedstates", "US"),
    ("unitedkingdom", "GB"),
    ("netherlands", "NL"),
    ("philippines", "PH"),
    ("dominicanrepublic", "DO"),
    ("centralafricanrepublic", "CF"),
    ("caymanislands", "KY"),
    ("falklandislands", "FK"),
    ("faroeislands", "FO"),
    ("marshallislands", "MH"),
    ("solomonislands", "SB"),
    ("cookislands", "CK"),
    ("virginislandsbritish", "VG"),
    ("britishvirginislands", "VG"),
    ("virginislandsus", "VI"),
    ("usvirginislands", "VI"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_read_english_names_alpha3_and_sentinels() {
        for (raw, code) in [
            ("UNITEDSTATES", "US"),
            ("UNITEDKINGDOM", "GB"),
            ("Cayman Islands", "KY"),
            ("caymanislands", "KY"),
            ("united states of america", "US"),
            ("DEU", "DE"),
            ("gbr", "GB"),
            ("The Netherlands", "NL"),
            ("Côte d'Ivoire", "CI"),
            ("Viet Nam", "VN"),
            ("Korea, Republic of", "KR"),
            ("Russian Federation", "RU"),
            ("Bosnia and Herzegovina", "BA"),
            ("Turks and Caicos Islands", "TC"),
            ("SAUDIARABIA", "SA"),
            ("New Zealand", "NZ"),
            ("Kosovo", "XK"),
        ] {
            assert_eq!(
                normalize_country(raw),
                Ok(CountryCode::Code(code.into())),
                "{raw}"
            );
        }
        for sentinel in ["00", "ALL", "ww", "*", "Worldwide"] {
            assert_eq!(
                normalize_country(sentinel),
                Ok(CountryCode::Worldwide),
                "{sentinel}"
            );
        }
        for unknown in ["Atlantis", "840", "XX", "Narnia", "U"] {
            assert!(normalize_country(unknown).is_err(), "{unknown}");
        }
    }

    #[test]
    fn countries_normalize_aliases_case_and_sentinels() {
        assert_eq!(normalize_country("us"), Ok(CountryCode::Code("US".into())));
        assert_eq!(normalize_country("UK"), Ok(CountryCode::Code("GB".into())));
        assert_eq!(
            normalize_country(" United Kingdom "),
            Ok(CountryCode::Code("GB".into()))
        );
        assert_eq!(normalize_country("ALL"), Ok(CountryCode::Worldwide));
        assert_eq!(normalize_country("ww"), Ok(CountryCode::Worldwide));
        assert!(normalize_country("XX").is_err());
        assert!(normalize_country("Atlantis").is_err());
    }

    #[test]
    fn words_parse_leniently() {
        assert_eq!("Apply To Run".parse(), Ok(OfferStatus::Pending));
        assert_eq!("cpa_percentage".parse(), Ok(PayoutModel::RevShare));
        assert_eq!("RevShare".parse(), Ok(PayoutModel::RevShare));
        assert_eq!("day".parse(), Ok(CapPeriod::Daily));
        assert_eq!("budget".parse(), Ok(CapEvent::Payout));
        assert!("sometimes".parse::<OfferStatus>().is_err());
    }

    #[test]
    fn os_and_currency_normalize() {
        assert_eq!(normalize_os("iPhone"), "ios");
        assert_eq!(normalize_os("Android"), "android");
        assert_eq!(normalize_os("Mac OS X"), "macos");
        assert_eq!(normalize_currency("usd").unwrap(), "USD");
        assert_eq!(normalize_currency("€").unwrap(), "EUR");
        assert!(normalize_currency("dollars").is_err());
    }
}
