//! The audit record as JSON: byte for byte what `serde_json` writes for any
//! `Serialize` value, with strings checked for what must be escaped eight
//! bytes at a time. serde_json looks up every byte of every string (field
//! names included) in its escape table, two thirds of serialising a record
//! on the audit writer's thread; with this writer a presigned GET's record
//! costs 9.0 k instructions instead of 11.8 k (callgrind). Floats are written
//! by serde_json itself, so the two cannot differ there either.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value could not be written: a map key that is not a string, or an
/// error a `Serialize` implementation raised.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(String);

impl ser::Error for JsonError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        JsonError(msg.to_string())
    }
}

/// Appends `value` as JSON to `out`. On an error, `out` may hold part of it.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), JsonError> {
    value.serialize(&mut Writer { out })
}

/// What a byte below 0x80 is escaped as after a backslash (`u`: as `\u00XX`),
/// or 0: serde_json's table.
const ESCAPE: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any of eight bytes is a control character, `"` or `\`. Each test
/// is exact for the word as a whole (bytes of 0x80 and above never match).
fn any_escaped(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH != 0
}

/// Whether any byte of `bytes` must be escaped: eight at a time, the last
/// word overlapping the one before it; a shorter string in one word of
/// overlapping loads (most are field names of a few bytes).
fn needs_escaping(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let load = |at: usize, len: usize| {
        let mut w = [0u8; 8];
        w[..len].copy_from_slice(&bytes[at..at + len]);
        u64::from_le_bytes(w)
    };
    let word = match n {
        0 => return false,
        // Bytes 0, the middle and the last cover every byte of up to three;
        // the five bytes not loaded hold `a`.
        1..=3 => {
            0x6161_6161_6100_0000
                | u64::from(bytes[0])
                | u64::from(bytes[n / 2]) << 8
                | u64::from(bytes[n - 1]) << 16
        }
        4..=7 => load(0, 4) | load(n - 4, 4) << 32,
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if any_escaped(load(at, 8)) {
                    return true;
                }
                at += 8;
            }
            load(n - 8, 8)
        }
    };
    any_escaped(word)
}

/// A float as serde_json writes it (`null` for NaN and infinities).
fn write_float<F: Serialize>(out: &mut Vec<u8>, f: F) -> Result<(), JsonError> {
    serde_json::to_writer(out, &f).map_err(|e| JsonError(e.to_string()))
}

/// `s` as a JSON string, quotes included.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if needs_escaping(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// The contents of a string that holds something to escape, as serde_json
/// escapes them: runs copied whole, `\u00XX` in lowercase hex for the
/// control characters without a short form.
#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run_start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = match ESCAPE.get(byte as usize) {
            Some(&e) if e != 0 => e,
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..at]);
        if escape == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xF) as usize]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
        run_start = at + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
}

/// The integer methods of a serializer whose `integer` writes one.
macro_rules! integers {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(self, v: $ty) -> Result<(), JsonError> {
            self.integer(v)
        }
    )*};
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn integer<I: itoa::Integer>(&mut self, i: I) -> Result<(), JsonError> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        Ok(())
    }

    /// serde_json's own float formatting (and `null` for NaN and infinities).
    fn float<F: Serialize>(&mut self, f: F) -> Result<(), JsonError> {
        write_float(self.out, f)
    }

    /// `{"variant":` — the opening of every variant with content.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
    }
}

/// A sequence, map or struct being written; `close` is what ends it.
struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    close: &'static [u8],
}

impl<'w, 'a> Compound<'w, 'a> {
    fn open(w: &'w mut Writer<'a>, open: u8, close: &'static [u8]) -> Self {
        w.out.push(open);
        Compound {
            w,
            first: true,
            close,
        }
    }

    fn separate(&mut self) {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.separate();
        value.serialize(&mut *self.w)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), JsonError> {
        self.separate();
        write_str(self.w.out, key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }

    fn close(self) -> Result<(), JsonError> {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );
    fn serialize_f32(self, v: f32) -> Result<(), JsonError> {
        self.float(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), JsonError> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        write_str(self.out, v);
        Ok(())
    }
    /// As serde_json: an array of numbers.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), JsonError> {
        let mut seq = Compound::open(self, b'[', b"]");
        for b in v {
            seq.element(b)?;
        }
        seq.close()
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'[', b"]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'[', b"]"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'[', b"]"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.open_variant(variant);
        Ok(Compound::open(self, b'[', b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'{', b"}"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        Ok(Compound::open(self, b'{', b"}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, JsonError> {
        self.open_variant(variant);
        Ok(Compound::open(self, b'{', b"}}"))
    }
}

/// Sequences and tuples: elements separated by commas.
macro_rules! elements {
    ($($kind:ident::$method:ident),*) => {$(
        impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = JsonError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
                self.element(value)
            }
            fn end(self) -> Result<(), JsonError> {
                self.close()
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), JsonError> {
        self.separate();
        key.serialize(KeyWriter {
            out: &mut *self.w.out,
        })?;
        self.w.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), JsonError> {
        self.close()
    }
}

/// Structs: named fields.
macro_rules! fields {
    ($($kind:ident),*) => {$(
        impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = JsonError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), JsonError> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), JsonError> {
                self.close()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// A map key: JSON keys are strings, so strings, characters and unit
/// variants are written as such and integers, booleans and finite floats
/// quoted, as serde_json does; anything else is refused.
struct KeyWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn quoted(self, text: &str) -> Result<(), JsonError> {
        self.out.push(b'"');
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(b'"');
        Ok(())
    }

    fn integer<I: itoa::Integer>(self, i: I) -> Result<(), JsonError> {
        let mut buf = itoa::Buffer::new();
        let text = buf.format(i);
        self.quoted(text)
    }

    /// A finite number quoted as serde_json writes it; others are refused.
    fn float<F: Serialize>(self, f: F, finite: bool) -> Result<(), JsonError> {
        if !finite {
            return Err(JsonError("float key must be finite".into()));
        }
        self.out.push(b'"');
        write_float(self.out, f)?;
        self.out.push(b'"');
        Ok(())
    }
}

fn key_refused() -> JsonError {
    JsonError("key must be a string".into())
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Impossible<(), JsonError>;
    type SerializeTuple = Impossible<(), JsonError>;
    type SerializeTupleStruct = Impossible<(), JsonError>;
    type SerializeTupleVariant = Impossible<(), JsonError>;
    type SerializeMap = Impossible<(), JsonError>;
    type SerializeStruct = Impossible<(), JsonError>;
    type SerializeStructVariant = Impossible<(), JsonError>;

    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.quoted(if v { "true" } else { "false" })
    }
    integers!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );
    fn serialize_f32(self, v: f32) -> Result<(), JsonError> {
        self.float(v, v.is_finite())
    }
    fn serialize_f64(self, v: f64) -> Result<(), JsonError> {
        self.float(v, v.is_finite())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), JsonError> {
        Err(key_refused())
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        Err(key_refused())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        Err(key_refused())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonError> {
        Err(key_refused())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), JsonError> {
        Err(key_refused())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, JsonError> {
        Err(key_refused())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, JsonError> {
        Err(key_refused())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, JsonError> {
        Err(key_refused())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, JsonError> {
        Err(key_refused())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, JsonError> {
        Err(key_refused())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, JsonError> {
        Err(key_refused())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, JsonError> {
        Err(key_refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn ours<T: Serialize + ?Sized>(v: &T) -> Result<String, JsonError> {
        let mut out = b"[prefix kept]".to_vec();
        write(&mut out, v)?;
        let text = String::from_utf8(out).expect("UTF-8");
        Ok(text
            .strip_prefix("[prefix kept]")
            .expect("appended")
            .to_string())
    }

    /// Strings whose bytes fall often on what must be escaped, at every
    /// offset within and across eight-byte words.
    fn strings() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[a-z0-9/._-]{0,12}",
            2 => prop::char::range('\u{0}', '\u{7f}').prop_map(String::from),
            1 => Just("\"".to_string()),
            1 => Just("\\".to_string()),
            1 => prop::char::range('\u{0}', '\u{1f}').prop_map(String::from),
            1 => Just("\u{7f}\u{80}é\u{2028}💡".to_string()),
            1 => any::<String>(),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            strings().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(strings(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in strings()) {
            prop_assert_eq!(ours(&s).unwrap(), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn any_json_value_is_written_as_serde_json_writes_it(v in values()) {
            prop_assert_eq!(ours(&v).unwrap(), serde_json::to_string(&v).unwrap());
        }
    }

    #[test]
    fn every_byte_at_every_offset_of_a_word() {
        for byte in 0u8..0x80 {
            let c = char::from(byte);
            for s in [
                c.to_string(),
                format!("{c}y"),
                format!("y{c}"),
                format!("y{c}y"),
                format!("é{c}"),
                format!("xxx{c}"),
                format!("xxxx{c}"),
                format!("xxxxx{c}"),
                format!("xxxxxx{c}"),
            ] {
                assert_eq!(
                    ours(&s).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{s:?}"
                );
            }
            for offset in 0..17 {
                let mut s = "x".repeat(offset);
                s.push(char::from(byte));
                s.push_str("yz");
                assert_eq!(
                    ours(&s).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "byte {byte:#x} at {offset}"
                );
            }
        }
    }

    /// Every shape a derived `Serialize` can take.
    #[derive(Serialize)]
    enum Shapes {
        Unit,
        #[serde(rename = "re\"named")]
        Renamed,
        Newtype(u8),
        Tuple(i32, String),
        Struct {
            a: Option<f32>,
            b: char,
        },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Debug, Serialize)]
    struct Newtype(&'static str);

    #[derive(Serialize)]
    struct TupleStruct(u16, bool);

    #[derive(Serialize)]
    struct Record {
        shapes: Vec<Shapes>,
        unit: Unit,
        newtype: Newtype,
        tuple: (u128, i128, ()),
        tuple_struct: TupleStruct,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        by_integer: BTreeMap<i64, &'static str>,
        by_bool: BTreeMap<bool, u8>,
        by_char: BTreeMap<char, Unit>,
        by_variant: BTreeMap<Key, f64>,
        empty: Vec<u8>,
        empty_map: BTreeMap<String, u8>,
        floats: [f64; 6],
    }

    #[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        First,
        Second,
    }

    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn every_shape_is_written_as_serde_json_writes_it() {
        let record = Record {
            shapes: vec![
                Shapes::Unit,
                Shapes::Renamed,
                Shapes::Newtype(7),
                Shapes::Tuple(-3, "t\n".into()),
                Shapes::Struct {
                    a: Some(1.5),
                    b: '"',
                },
                Shapes::Struct { a: None, b: 'é' },
            ],
            unit: Unit,
            newtype: Newtype("n"),
            tuple: (u128::MAX, i128::MIN, ()),
            tuple_struct: TupleStruct(65535, false),
            skipped: None,
            bytes: vec![0, 1, 255],
            by_integer: [(-1, "a"), (2, "b")].into_iter().collect(),
            by_bool: [(false, 0), (true, 1)].into_iter().collect(),
            by_char: [('\u{1}', Unit), ('k', Unit)].into_iter().collect(),
            by_variant: [(Key::First, 0.1), (Key::Second, 1e300)]
                .into_iter()
                .collect(),
            empty: vec![],
            empty_map: BTreeMap::new(),
            floats: [0.0, -0.0, 1.0, f64::NAN, f64::INFINITY, 1.7267540000000001],
        };
        assert_eq!(
            ours(&record).unwrap(),
            serde_json::to_string(&record).unwrap()
        );
    }

    #[test]
    fn keys_are_written_or_refused_as_serde_json_does() {
        fn same<K: Serialize + std::fmt::Debug>(key: K) {
            let map = OneKey(&key);
            match (ours(&map), serde_json::to_string(&map)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{key:?}: ours {a:?}, serde_json's {b:?}"),
            }
        }
        same(vec![1u8]);
        same(());
        same(Some("k\\"));
        same(Option::<String>::None);
        same(-7i8);
        same(u128::MAX);
        same(true);
        same('\u{1}');
        same(Key::Second);
        same(Newtype("n\""));
        for f in [0.5f64, -0.0, 1e300, f64::NAN, f64::INFINITY] {
            same(f);
        }
        same(1.5f32);
        same(f32::NAN);
        let refused = |key: &dyn erased::Key| {
            let mut out = Vec::new();
            assert!(key.write(&mut out).is_err());
        };
        refused(&Unit);
        refused(&TupleStruct(1, true));
        refused(&Shapes::Newtype(1));
    }

    /// A map of one entry whose key is `K`.
    struct OneKey<'a, K>(&'a K);

    impl<K: Serialize> Serialize for OneKey<'_, K> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(self.0, &1u8)?;
            map.end()
        }
    }

    /// Keys of several types behind one reference, each compared with
    /// serde_json's refusal.
    mod erased {
        use super::*;

        pub trait Key {
            fn write(&self, out: &mut Vec<u8>) -> Result<(), JsonError>;
        }

        impl<K: Serialize> Key for K {
            fn write(&self, out: &mut Vec<u8>) -> Result<(), JsonError> {
                assert!(serde_json::to_string(&OneKey(self)).is_err());
                super::super::write(out, &OneKey(self))
            }
        }
    }
}
