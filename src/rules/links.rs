//! Appending parameters to tracking and impression links.

/// Adds `append` (`a=1&b={click_id}`) to a URL's query string. A parameter
/// the URL already has is replaced rather than repeated, the fragment stays
/// last, and nothing is re-encoded (networks' macros such as `{click_id}`
/// must reach the tracker as written).
pub fn append_query(url: &str, append: &str) -> String {
    let append = append.trim_start_matches(['?', '&']);
    if append.is_empty() {
        return url.to_string();
    }
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], &before_fragment[i + 1..]),
        None => (before_fragment, ""),
    };
    let key = |pair: &str| pair.split('=').next().unwrap_or_default().to_string();
    let added: Vec<&str> = append.split('&').filter(|p| !p.is_empty()).collect();
    let added_keys: Vec<String> = added.iter().map(|p| key(p)).collect();
    let kept = query
        .split('&')
        .filter(|p| !p.is_empty() && !added_keys.contains(&key(p)));
    let pairs: Vec<&str> = kept.chain(added.iter().copied()).collect();
    format!("{base}?{}{fragment}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::append_query;

    #[test]
    fn adds_a_query_string_where_there_is_none() {
        assert_eq!(
            append_query("https://t.example/c/1", "sub1={click_id}"),
            "https://t.example/c/1?sub1={click_id}"
        );
    }

    #[test]
    fn extends_an_existing_query_string() {
        assert_eq!(
            append_query("https://t.example/c?o=1&a=2", "sub1={click_id}&sub2=x"),
            "https://t.example/c?o=1&a=2&sub1={click_id}&sub2=x"
        );
    }

    #[test]
    fn replaces_a_parameter_the_link_already_has() {
        assert_eq!(
            append_query("https://t.example/c?sub1=old&o=1", "sub1={click_id}"),
            "https://t.example/c?o=1&sub1={click_id}"
        );
    }

    #[test]
    fn keeps_the_fragment_last_and_tolerates_stray_separators() {
        assert_eq!(
            append_query("https://t.example/c?&o=1&#top", "&imp={imp_id}"),
            "https://t.example/c?o=1&imp={imp_id}#top"
        );
        assert_eq!(
            append_query("https://t.example/c?", "a=1"),
            "https://t.example/c?a=1"
        );
    }
}
