//! Tests of the JSON reader: examples, then properties checked against
//! serde_json (the reference) on random documents and on random damage.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::*;

fn fields(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    object(text, |k, v| {
        out.push((k.into_owned(), v.raw().to_owned()));
        Ok::<(), Error>(())
    })?;
    Ok(out)
}

fn field<'a>(text: &'a str, name: &str) -> Value<'a> {
    let mut found = None;
    object(text, |k, v| {
        if k == name {
            found = Some(v);
        }
        Ok::<(), Error>(())
    })
    .unwrap();
    found.unwrap()
}

fn kind(r: Result<impl Sized, Error>) -> ErrorKind {
    r.err().unwrap().kind
}

#[test]
fn reads_fields_in_order_with_raw_values() {
    let text = " {\"a\" : 1 ,\"b\":{\"x\":[1, 2.5e-3, \"]\"]} , \"c\":\"s\",\"a\":null}\n";
    assert_eq!(
        fields(text).unwrap(),
        vec![
            ("a".into(), "1".into()),
            ("b".into(), "{\"x\":[1, 2.5e-3, \"]\"]}".into()),
            ("c".into(), "\"s\"".into()),
            ("a".into(), "null".into()),
        ]
    );
    assert_eq!(fields("{}").unwrap(), vec![]);
    assert_eq!(fields(" { } ").unwrap(), vec![]);
}

#[test]
fn decodes_every_escape() {
    let text = r#"{"s":"q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20AC \ud83d\ude00 é😀"}"#;
    let s = field(text, "s").string().unwrap();
    assert_eq!(s, "q\" b\\ s/ \u{8}\u{c}\n\r\t Aé€ 😀 é😀");
    assert!(matches!(
        field(r#"{"s":"plain"}"#, "s").string().unwrap(),
        Cow::Borrowed("plain")
    ));
    // Escaped keys match their decoded form.
    assert_eq!(fields(r#"{"ch\u0061nnel":1}"#).unwrap()[0].0, "channel");
}

#[test]
fn unpaired_surrogates_fail_only_when_decoded() {
    for bad in [
        r#"{"s":"\ud800"}"#,
        r#"{"s":"\udc00"}"#,
        r#"{"s":"\ud800\u0041"}"#,
        r#"{"s":"\ud800\ud800"}"#,
        r#"{"s":"\ud800x"}"#,
        r#"{"s":"\ud800\n"}"#,
    ] {
        assert_eq!(
            kind(field(bad, "s").string()),
            ErrorKind::LoneSurrogate,
            "{bad}"
        );
        assert!(serde_json::from_str::<HashMap<String, String>>(bad).is_err());
    }
    // In a raw value they are kept, as serde_json's RawValue keeps them.
    let raw = r#"{"v":{"s":"\ud800"}}"#;
    assert_eq!(field(raw, "v").raw(), r#"{"s":"\ud800"}"#);
    // In a key that is decoded they are an error.
    assert_eq!(kind(fields(r#"{"\udfff":1}"#)), ErrorKind::LoneSurrogate);
}

#[test]
fn numbers_follow_the_json_grammar() {
    for good in [
        "0",
        "-0",
        "12",
        "-1.5",
        "1e5",
        "1E+5",
        "1.0e-0",
        "123456789012345678901234567890",
    ] {
        assert!(validate(good).is_ok(), "{good}");
    }
    for bad in [
        "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x1", "- 1", "1.5.", "--1", "NaN", "Infinity",
    ] {
        assert!(validate(bad).is_err(), "{bad}");
        assert!(serde_json::from_str::<&RawValue>(bad).is_err(), "{bad}");
    }
    let u = |t: &str| validate(t).unwrap().u64();
    assert_eq!(u("0"), Ok(0));
    assert_eq!(u("18446744073709551615"), Ok(u64::MAX));
    for not_unsigned in [
        "18446744073709551616",
        "-1",
        "-0",
        "1.0",
        "1e3",
        "\"1\"",
        "null",
    ] {
        assert_eq!(
            kind(u(not_unsigned)),
            ErrorKind::ExpectedInteger,
            "{not_unsigned}"
        );
        assert!(serde_json::from_str::<u64>(not_unsigned).is_err());
    }
    assert_eq!(validate("4294967295").unwrap().u32(), Ok(u32::MAX));
    assert!(validate("4294967296").unwrap().u32().is_err());
}

#[test]
fn rejects_malformed_documents_with_a_position() {
    let cases: &[(&str, ErrorKind, usize)] = &[
        ("", ErrorKind::ExpectedObject, 0),
        ("[]", ErrorKind::ExpectedObject, 0),
        ("{", ErrorKind::UnexpectedEnd, 1),
        ("{\"a\"}", ErrorKind::Unexpected, 4),
        ("{\"a\":}", ErrorKind::Unexpected, 5),
        ("{\"a\":1,}", ErrorKind::Unexpected, 7),
        ("{\"a\":1 \"b\":2}", ErrorKind::Unexpected, 7),
        ("{\"a\":1} x", ErrorKind::Trailing, 8),
        ("{\"a\":\"x\ny\"}", ErrorKind::ControlCharacter, 7),
        ("{\"a\":\"\\x\"}", ErrorKind::InvalidEscape, 7),
        ("{\"a\":\"\\u12g4\"}", ErrorKind::InvalidEscape, 10),
        ("{\"a\":[1,]}", ErrorKind::Unexpected, 8),
        ("{\"a\":[1}", ErrorKind::Unexpected, 7),
        ("{\"a\":{\"b\"]}", ErrorKind::Unexpected, 9),
        ("{\"a\":tru}", ErrorKind::Unexpected, 8),
        ("{\"a\":\"open", ErrorKind::UnexpectedEnd, 10),
        ("{a:1}", ErrorKind::Unexpected, 1),
    ];
    for (text, kind, at) in cases {
        assert_eq!(
            fields(text),
            Err(Error {
                kind: *kind,
                at: *at
            }),
            "{text}"
        );
    }
    assert_eq!(
        Error {
            kind: ErrorKind::Trailing,
            at: 8
        }
        .to_string(),
        "trailing characters at byte 8"
    );
}

#[test]
fn arrays_hand_out_each_item() {
    let mut items = Vec::new();
    array(" [ {\"a\":[]} , 2,\"x\" ] ", |v| {
        items.push(v.raw());
        Ok::<(), Error>(())
    })
    .unwrap();
    assert_eq!(items, ["{\"a\":[]}", "2", "\"x\""]);
    assert!(array("[]", |_| Ok::<(), Error>(())).is_ok());
    assert_eq!(
        kind(array("{}", |_| Ok::<(), Error>(()))),
        ErrorKind::ExpectedArray
    );
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let depth = 200_000;
    let text = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(fields(&text).unwrap()[0].1.len(), 2 * depth);
    let unclosed = format!("{{\"a\":{}", "[{\"k\":".repeat(depth));
    assert!(fields(&unclosed).is_err());
}

#[test]
fn callback_errors_stop_the_read() {
    #[derive(Debug, PartialEq)]
    enum E {
        Json(Error),
        Mine,
    }
    impl From<Error> for E {
        fn from(e: Error) -> Self {
            E::Json(e)
        }
    }
    let mut seen = 0;
    let r = object("{\"a\":1,\"b\":2", |_, _| {
        seen += 1;
        Err(E::Mine)
    });
    assert_eq!((r, seen), (Err(E::Mine), 1));
}

// ----- properties against serde_json --------------------------------------

/// Random choices that steer rendering (whitespace, escapes); cycled.
#[derive(Debug, Clone)]
pub(crate) struct Tape(pub Vec<u8>, pub usize);

impl Tape {
    fn next(&mut self) -> u8 {
        let b = self
            .0
            .get(self.1 % self.0.len().max(1))
            .copied()
            .unwrap_or(0);
        self.1 += 1;
        b
    }
}

pub(crate) fn ws(t: &mut Tape, out: &mut String) {
    out.push_str(match t.next() % 6 {
        0 => " ",
        1 => "\n\t",
        2 => "\r\n  ",
        _ => "",
    });
}

fn push_unit(out: &mut String, unit: u32, upper: bool) {
    if upper {
        out.push_str(&format!("\\u{unit:04X}"));
    } else {
        out.push_str(&format!("\\u{unit:04x}"));
    }
}

/// Writes `s` as a JSON string, escaping characters at random.
pub(crate) fn render_str(s: &str, t: &mut Tape, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let choice = t.next() % 4;
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = matches!(c, '"' | '\\') || (c as u32) < 0x20;
        match (choice, short) {
            (0 | 1, _) if !must_escape => out.push(c),
            (0..=2, Some(e)) => out.push_str(e),
            _ => {
                let upper = t.next() % 2 == 0;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    push_unit(out, u32::from(*u), upper);
                }
            }
        }
    }
    out.push('"');
}

/// Writes an object with these members, in this order (duplicates kept).
pub(crate) fn render_members<'a>(
    members: impl IntoIterator<Item = (&'a String, &'a Json)>,
    t: &mut Tape,
    out: &mut String,
) {
    out.push('{');
    ws(t, out);
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
            ws(t, out);
        }
        render_str(k, t, out);
        ws(t, out);
        out.push(':');
        ws(t, out);
        render(v, t, out);
        ws(t, out);
    }
    out.push('}');
}

pub(crate) fn render(v: &Json, t: &mut Tape, out: &mut String) {
    match v {
        Json::Object(map) => render_members(map, t, out),
        Json::Array(items) => {
            out.push('[');
            ws(t, out);
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    ws(t, out);
                }
                render(v, t, out);
                ws(t, out);
            }
            out.push(']');
        }
        Json::String(s) => render_str(s, t, out),
        other => out.push_str(&other.to_string()),
    }
}

pub(crate) fn text_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter)
}

pub(crate) fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<u64>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        // Dyadic fractions: their shortest decimal form reads back exactly
        // (serde_json's default float parsing is exact only for short ones).
        (any::<i16>(), 0..8i32).prop_map(|(m, e)| Json::from(f64::from(m) / 2f64.powi(e))),
        text_strategy().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            proptest::collection::vec((text_strategy(), inner), 0..6)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

pub(crate) fn json_object() -> impl Strategy<Value = Map<String, Json>> {
    proptest::collection::vec((text_strategy(), json_value()), 0..8)
        .prop_map(|kv| kv.into_iter().collect())
}

/// Characters that make interesting damage to a JSON document.
pub(crate) const DAMAGE: &[char] = &[
    '{', '}', '[', ']', '"', ':', ',', '\\', 'u', 'd', '8', '0', '1', '9', 'a', 'F', 'e', 'E', '+',
    '-', '.', 't', 'n', 'l', ' ', '\n', '\u{1}', '\u{7f}', 'é', '😀',
];

pub(crate) fn damage(text: &str, edits: &[(usize, u8, usize)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(pos, op, c) in edits {
        let c = DAMAGE[c % DAMAGE.len()];
        let at = if chars.is_empty() {
            0
        } else {
            pos % (chars.len() + 1)
        };
        match op % 3 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = c,
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}

pub(crate) fn edits() -> impl Strategy<Value = Vec<(usize, u8, usize)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<usize>()), 1..4)
}

/// The verdicts of this reader and of serde_json on one text.
fn same_verdicts(text: &str) -> Result<(), TestCaseError> {
    let mine = object(text, |_, _| Ok::<(), Error>(())).is_ok();
    let reference = serde_json::from_str::<HashMap<String, &RawValue>>(text).is_ok();
    prop_assert_eq!(mine, reference, "object verdicts differ on {:?}", text);
    let mine = validate(text).map(Value::raw);
    let reference = serde_json::from_str::<&RawValue>(text).map(RawValue::get);
    prop_assert_eq!(
        mine.ok(),
        reference.ok(),
        "value verdicts differ on {:?}",
        text
    );
    let mine = array(text, |_| Ok::<(), Error>(())).is_ok();
    let reference = serde_json::from_str::<Vec<&RawValue>>(text).is_ok();
    prop_assert_eq!(mine, reference, "array verdicts differ on {:?}", text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_serde_json_on_valid_objects(map in json_object(), tape in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut t = Tape(tape, 0);
        let mut text = String::new();
        ws(&mut t, &mut text);
        render(&Json::Object(map.clone()), &mut t, &mut text);
        ws(&mut t, &mut text);
        // serde_json reads the rendering as the same value.
        prop_assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), Json::Object(map.clone()));
        let mut got = Vec::new();
        object(&text, |k, v| {
            got.push((k.into_owned(), v));
            Ok::<(), Error>(())
        }).unwrap();
        prop_assert_eq!(got.len(), map.len());
        for ((key, value), (want_key, want)) in got.iter().zip(map.iter()) {
            prop_assert_eq!(key, want_key);
            prop_assert_eq!(value.raw().trim(), value.raw());
            prop_assert_eq!(&serde_json::from_str::<Json>(value.raw()).unwrap(), want);
            match want {
                Json::String(s) => prop_assert_eq!(value.string().unwrap(), s.as_str()),
                _ => prop_assert_eq!(value.string().unwrap_err().kind, ErrorKind::ExpectedString),
            }
            match want.as_u64() {
                Some(n) => prop_assert_eq!(value.u64(), Ok(n)),
                None => prop_assert!(value.u64().is_err()),
            }
            prop_assert_eq!(value.is_null(), want.is_null());
        }
        same_verdicts(&text)?;
    }

    #[test]
    fn agrees_with_serde_json_on_damaged_documents(map in json_object(), tape in proptest::collection::vec(any::<u8>(), 1..64), edits in edits()) {
        let mut t = Tape(tape, 0);
        let mut text = String::new();
        render(&Json::Object(map), &mut t, &mut text);
        same_verdicts(&damage(&text, &edits))?;
    }

    #[test]
    fn agrees_with_serde_json_on_damaged_values(value in json_value(), tape in proptest::collection::vec(any::<u8>(), 1..64), edits in edits()) {
        let mut t = Tape(tape, 0);
        let mut text = String::new();
        render(&value, &mut t, &mut text);
        same_verdicts(&text)?;
        same_verdicts(&damage(&text, &edits))?;
    }

    #[test]
    fn decodes_strings_like_serde_json(s in text_strategy(), tape in proptest::collection::vec(any::<u8>(), 1..64), edits in edits()) {
        let mut t = Tape(tape, 0);
        let mut token = String::new();
        render_str(&s, &mut t, &mut token);
        let text = format!("{{\"s\":{token}}}");
        prop_assert_eq!(field(&text, "s").string().unwrap(), s.as_str());
        // Damaged: both decode to the same string, or both fail.
        let damaged = format!("{{\"s\":{}}}", damage(&token, &edits));
        let reference = serde_json::from_str::<HashMap<String, String>>(&damaged).ok();
        let mut mine: Option<String> = None;
        let ok = object(&damaged, |k, v| {
            let decoded = v.string()?;
            if k == "s" {
                mine = Some(decoded.into_owned());
            }
            Ok::<(), Error>(())
        }).is_ok();
        prop_assert_eq!(ok.then_some(mine).flatten(), reference.and_then(|m| m.get("s").cloned()));
    }

    #[test]
    fn never_panics_on_garbage(text in "\\PC{0,200}", bytes in proptest::collection::vec(proptest::sample::select(DAMAGE), 0..60)) {
        same_verdicts(&text)?;
        same_verdicts(&String::from_iter(bytes))?;
    }
}
