//! The string fields of a request type, found from its descriptor (nested messages,
//! repeated messages' first element and oneofs included), and a request with one of them
//! set: how the suite tries a value in every free-text field without listing them.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// The proto name (for violations: `billing_contact`).
    proto: String,
    /// The JSON name (for requests: `billingContact`).
    json: String,
    /// A repeated message field: its first element.
    element: bool,
    /// A repeated string field.
    list: bool,
    /// The other fields of its oneof, if it is in one (JSON names).
    oneof_siblings: Vec<String>,
}

/// A string field reachable from a request type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringField {
    steps: Vec<Step>,
}

impl StringField {
    /// The path as field violations name it: `billing_contact.name`, `events[0].feature`.
    pub fn path(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                if s.element {
                    format!("{}[0]", s.proto)
                } else {
                    s.proto.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The last step's proto name.
    pub fn leaf(&self) -> &str {
        self.steps.last().map_or("", |s| s.proto.as_str())
    }

    /// Whether setting the field adds an element to a repeated field of `request` (it
    /// had none), or a message `request` did not have.
    pub fn adds_element(&self, request: &Value) -> bool {
        let mut node = request;
        for step in &self.steps[..self.steps.len().saturating_sub(1)] {
            let Some(child) = node.get(&step.json) else {
                return true;
            };
            node = if step.element {
                match child.as_array().and_then(|items| items.first()) {
                    Some(first) => first,
                    None => return true,
                }
            } else {
                child
            };
        }
        false
    }

    /// `request` with this field set to `value` (lists hold just `value`; a oneof's
    /// other fields are removed).
    pub fn set(&self, request: &Value, value: &str) -> Value {
        let mut out = request.clone();
        set_in(&mut out, &self.steps, value);
        out
    }
}

fn set_in(node: &mut Value, steps: &[Step], value: &str) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Some(object) = node.as_object_mut() else {
        return;
    };
    for sibling in &step.oneof_siblings {
        object.remove(sibling);
    }
    if rest.is_empty() {
        let leaf = if step.list {
            Value::Array(vec![Value::String(value.to_owned())])
        } else {
            Value::String(value.to_owned())
        };
        object.insert(step.json.clone(), leaf);
        return;
    }
    let child = object.entry(step.json.clone()).or_insert(Value::Null);
    if step.element {
        if !matches!(child, Value::Array(items) if !items.is_empty()) {
            *child = Value::Array(vec![Value::Object(Map::new())]);
        }
        if let Some(first) = child.as_array_mut().and_then(|items| items.first_mut()) {
            set_in(first, rest, value);
        }
    } else {
        set_in(child, rest, value);
    }
}

/// Every string field of `message`, to `depth` levels of nesting. Well-known types
/// (`google.protobuf.*`) are not descended into.
pub fn string_fields(message: &MessageDescriptor, depth: usize) -> Vec<StringField> {
    let mut out = Vec::new();
    walk(message, depth, &mut Vec::new(), &mut out);
    out
}

fn walk(
    message: &MessageDescriptor,
    depth: usize,
    prefix: &mut Vec<Step>,
    out: &mut Vec<StringField>,
) {
    for field in message.fields() {
        let oneof_siblings = field
            .containing_oneof()
            .filter(|o| !o.is_synthetic())
            .map(|o| {
                o.fields()
                    .filter(|f| f.name() != field.name())
                    .map(|f| f.json_name().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let step = Step {
            proto: field.name().to_owned(),
            json: field.json_name().to_owned(),
            element: field.is_list() && matches!(field.kind(), Kind::Message(_)),
            list: field.is_list(),
            oneof_siblings,
        };
        match field.kind() {
            Kind::String if !field.is_map() => {
                let mut steps = prefix.clone();
                steps.push(step);
                out.push(StringField { steps });
            }
            Kind::Message(inner)
                if depth > 0 && !field.is_map() && !inner.full_name().starts_with("google.") =>
            {
                prefix.push(step);
                walk(&inner, depth - 1, prefix, out);
                prefix.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_repeated_fields_are_found_and_set() -> anyhow::Result<()> {
        let pool = crate::grpc::pool()?;
        let ticket = pool
            .get_message_by_name("pdm.identity.v1.CreateSupportTicketRequest")
            .ok_or_else(|| anyhow::anyhow!("known"))?;
        let fields = string_fields(&ticket, 3);
        let paths: Vec<String> = fields.iter().map(StringField::path).collect();
        assert!(paths.contains(&"summary".to_owned()), "{paths:?}");
        assert!(
            paths.contains(&"attachments[0].file_name".to_owned()),
            "{paths:?}"
        );
        let name = fields
            .iter()
            .find(|f| f.path() == "attachments[0].file_name")
            .ok_or_else(|| anyhow::anyhow!("found"))?;
        let set = name.set(&serde_json::json!({"summary": "s"}), "x");
        assert_eq!(set["attachments"][0]["fileName"], "x");
        assert_eq!(set["summary"], "s");
        Ok(())
    }
}
