//! JSON read the way Go's `encoding/json` reads it, so that what a Go program (or any DTM SDK
//! written against one) sends is accepted unchanged:
//!
//! - object keys match a struct's field names **case-insensitively**;
//! - an explicit `null` is the field's zero value ([`null_default`]);
//! - unknown keys are ignored (serde's default).

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Deserializes `T` from a JSON object whose keys match `T`'s field names whatever their case
/// (`T`'s own names are lowercase). Anything but an object is an error.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let Value::Object(map) = serde_json::from_slice(body)? else {
        return Err(serde_json::Error::custom("expected a JSON object"));
    };
    let lowered: Map<String, Value> = map
        .into_iter()
        .map(|(k, v)| (k.to_lowercase(), v))
        .collect();
    serde_json::from_value(Value::Object(lowered))
}

/// `null` → the type's zero value, as Go decodes it: `#[serde(deserialize_with =
/// "kit::gojson::null_default")]`.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct T {
        #[serde(deserialize_with = "null_default")]
        trans_type: String,
        #[serde(deserialize_with = "null_default")]
        delay: i64,
    }

    #[test]
    fn keys_match_whatever_their_case_and_null_is_zero() {
        let t: T = from_slice(br#"{"Trans_Type":"saga","delay":null,"other":1}"#).unwrap();
        assert_eq!(
            t,
            T {
                trans_type: "saga".into(),
                delay: 0
            }
        );
        let e = from_slice::<T>(b"[1]").unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        assert!(from_slice::<T>(br#"{"delay":"5"}"#).is_err());
    }
}
