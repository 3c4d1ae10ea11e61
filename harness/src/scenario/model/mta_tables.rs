//! The MTAs' own tables of a scenario file (`[exim]`, `[opensmtpd]`, ...),
//! by the names their drivers give ([`crate::mta::Driver::scenario_table`]):
//! read from the same text as [`RawScenario`], so that a new MTA needs no
//! field here, and the one place that refuses a top-level key that is
//! neither [`RawScenario`]'s nor an MTA's.

use std::sync::LazyLock;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use toml::Spanned;

use super::{RawMtaTable, RawScenario};
use crate::policy::Mta;

/// Each MTA table the file has, by its name, in the file's order.
#[derive(Debug, Default)]
pub(crate) struct MtaTables(pub Vec<(&'static str, Spanned<RawMtaTable>)>);

/// The MTAs' table names, in the list of MTAs' order.
fn table_names() -> impl Iterator<Item = &'static str> {
    Mta::ALL
        .into_iter()
        .filter_map(|m| m.driver().scenario_table().map(|(name, _)| name))
}

/// Every top-level key a scenario file may have: [`RawScenario`]'s own,
/// then the MTAs' tables.
static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut keys = fields_of::<RawScenario>().to_vec();
    keys.extend(table_names());
    keys
});

impl<'de> Deserialize<'de> for MtaTables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Tables;
        impl<'de> Visitor<'de> for Tables {
            type Value = MtaTables;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a scenario file's tables")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MtaTables, A::Error> {
                let mut tables = Vec::new();
                while let Some(key) = map.next_key_seed(Key)? {
                    match key {
                        Some(name) => tables.push((name, map.next_value()?)),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(MtaTables(tables))
            }
        }
        d.deserialize_map(Tables)
    }
}

/// A top-level key: `Some` an MTA's table name, `None` one of
/// [`RawScenario`]'s; any other is refused as serde refuses an unknown
/// field, where the key is (so the error has its position).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a scenario file's key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if let Some(name) = table_names().find(|n| *n == v) {
            return Ok(Some(name));
        }
        // The MTAs' names are known above: what else KEYS holds is
        // RawScenario's own.
        if KEYS.contains(&v) {
            return Ok(None);
        }
        Err(E::unknown_field(v, &KEYS))
    }
}

/// The keys a struct's derived `Deserialize` reads, as it names them to
/// the deserializer.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Done;
    impl std::fmt::Display for Done {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields read")
        }
    }
    impl std::error::Error for Done {}
    impl de::Error for Done {
        fn custom<M: std::fmt::Display>(_: M) -> Done {
            Done
        }
    }
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Done;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Done> {
            self.0 = Some(fields);
            Err(Done)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_are_the_scenario_s_then_the_mtas_tables() {
        assert_eq!(KEYS[0], "name");
        assert!(KEYS.contains(&"expect") && KEYS.contains(&"relay"));
        let tables: Vec<&str> = table_names().collect();
        assert_eq!(tables, ["exim", "opensmtpd"]);
        assert!(KEYS.ends_with(&tables));
    }
}
