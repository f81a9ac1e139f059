//! XML responses as JSON-like trees, so that one mapping language serves both.
//!
//! The rule (also in the Network docs, `xml`):
//! - an element with child elements becomes an object keyed by the children's
//!   local names (namespace prefixes dropped);
//! - an element with only text becomes that text (entities decoded); an empty
//!   element becomes `""`; `xsi:nil="true"` becomes null;
//! - attributes become `@name` keys (namespace declarations and `xsi:*` are
//!   dropped); text beside child elements becomes `#text`;
//! - a name that repeats among siblings becomes a list; a name in `lists` is
//!   always a list, even of one, so one `<offer>` and many map alike. An empty
//!   container (`<allowed_countries />`) is `""`, and a path into it finds
//!   nothing: an empty list.
//!
//! Values stay strings: types are the mapping's business.

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// How deep elements may nest before the document is refused.
pub const MAX_DEPTH: usize = 128;

/// Why an XML document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("invalid XML at byte {position}: {reason}")]
    Syntax { position: u64, reason: String },
    #[error("XML nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("XML document has no root element")]
    Empty,
}

struct Frame {
    name: String,
    map: Map<String, Value>,
    text: String,
    has_children: bool,
    nil: bool,
}

/// Converts an XML document to a tree: `{root_name: ...}`.
pub fn xml_to_value(bytes: &[u8], lists: &[String]) -> Result<Value, XmlError> {
    let lists: HashSet<&str> = lists.iter().map(String::as_str).collect();
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    let mut buf = Vec::new();
    loop {
        let syntax = |e: quick_xml::Error, reader: &Reader<&[u8]>| XmlError::Syntax {
            position: reader.buffer_position(),
            reason: e.to_string(),
        };
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| syntax(e, &reader))?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                stack.push(open(&start));
            }
            Event::Empty(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                let frame = open(&start);
                let (name, value) = close(frame);
                attach(&mut stack, &mut root, name, value, &lists);
            }
            Event::Text(text) => {
                if let Some(frame) = stack.last_mut() {
                    let decoded = text.decode().map_err(|e| XmlError::Syntax {
                        position: reader.buffer_position(),
                        reason: e.to_string(),
                    })?;
                    let unescaped =
                        quick_xml::escape::unescape(&decoded).map_err(|e| XmlError::Syntax {
                            position: reader.buffer_position(),
                            reason: e.to_string(),
                        })?;
                    frame.text.push_str(&unescaped);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(frame) = stack.last_mut() {
                    let name = reference.decode().map_err(|e| XmlError::Syntax {
                        position: reader.buffer_position(),
                        reason: e.to_string(),
                    })?;
                    let entity = format!("&{name};");
                    let resolved = quick_xml::escape::unescape(&entity)
                        .map(|c| c.into_owned())
                        .unwrap_or(entity);
                    frame.text.push_str(&resolved);
                }
            }
            Event::CData(data) => {
                if let Some(frame) = stack.last_mut() {
                    frame.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or(XmlError::Syntax {
                    position: reader.buffer_position(),
                    reason: "closing tag without an opening tag".into(),
                })?;
                let (name, value) = close(frame);
                attach(&mut stack, &mut root, name, value, &lists);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax {
            position: reader.buffer_position(),
            reason: format!("element <{}> is not closed", stack[stack.len() - 1].name),
        });
    }
    let (name, value) = root.ok_or(XmlError::Empty)?;
    let mut top = Map::new();
    top.insert(name, value);
    Ok(Value::Object(top))
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

fn open(start: &BytesStart) -> Frame {
    let mut map = Map::new();
    let mut nil = false;
    for attr in start.attributes().flatten() {
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&attr.value).into_owned());
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let local_key = local(key.as_bytes());
        if key.starts_with("xsi:") || key.contains(":nil") {
            if local_key == "nil" && value.trim() == "true" {
                nil = true;
            }
            continue;
        }
        map.insert(format!("@{local_key}"), Value::String(value));
    }
    Frame {
        name: local(start.name().as_ref()),
        map,
        text: String::new(),
        has_children: false,
        nil,
    }
}

fn close(frame: Frame) -> (String, Value) {
    let Frame {
        name,
        mut map,
        text,
        has_children,
        nil,
    } = frame;
    if nil {
        return (name, Value::Null);
    }
    if !has_children && map.is_empty() {
        return (name, Value::String(text.trim().to_string()));
    }
    let trimmed = text.trim();
    if !trimmed.is_empty() {
        map.insert("#text".into(), Value::String(trimmed.to_string()));
    }
    (name, Value::Object(map))
}

fn attach(
    stack: &mut [Frame],
    root: &mut Option<(String, Value)>,
    name: String,
    value: Value,
    lists: &HashSet<&str>,
) {
    let Some(parent) = stack.last_mut() else {
        *root = Some((name, value));
        return;
    };
    match parent.map.get_mut(&name) {
        Some(Value::Array(items)) if lists.contains(name.as_str()) || items.len() > 1 => {
            items.push(value)
        }
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            let value = if lists.contains(name.as_str()) {
                Value::Array(vec![value])
            } else {
                value
            };
            parent.map.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FEED: &str = r#"<?xml version="1.0"?>
<feed xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:x">
  <offers>
    <offer id="7"><name>A &amp; B</name><campaign_id xsi:nil="true" /><tags /></offer>
  </offers>
</feed>"#;

    #[test]
    fn one_offer_reads_as_a_list_when_listed() {
        let v = xml_to_value(FEED.as_bytes(), &["offer".into()]).unwrap();
        assert_eq!(
            v,
            json!({"feed": {"offers": {"offer": [
                {"@id": "7", "name": "A & B", "campaign_id": null, "tags": ""}
            ]}}})
        );
        let unlisted = xml_to_value(FEED.as_bytes(), &[]).unwrap();
        assert!(unlisted["feed"]["offers"]["offer"].is_object());
    }

    #[test]
    fn repeated_names_become_lists_in_order() {
        let v = xml_to_value(b"<r><c>1</c><c>2</c><c>3</c></r>", &[]).unwrap();
        assert_eq!(v, json!({"r": {"c": ["1", "2", "3"]}}));
    }

    #[test]
    fn malformed_and_deep_documents_are_refused() {
        assert!(matches!(
            xml_to_value(b"<r><c></r>", &[]),
            Err(XmlError::Syntax { .. })
        ));
        assert!(matches!(xml_to_value(b"", &[]), Err(XmlError::Empty)));
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            xml_to_value(deep.as_bytes(), &[]),
            Err(XmlError::TooDeep)
        ));
    }
}
