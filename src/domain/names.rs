//! Closed sets of names (statuses, kinds, severities) kept as TEXT in Postgres and
//! as strings in JSON. One literal per variant is its JSON string, its column value
//! and its `as_str`, so the three cannot drift; the SQL side keeps its CHECK list,
//! and `store::schema` tests that each list is exactly the enum's names.

use std::fmt;

/// A name outside the set (from a query parameter or a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub value: String,
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown value `{}` (one of {})", self.value, self.expected.join(", "))
    }
}

impl std::error::Error for UnknownName {}

/// Declares a `Copy` enum of names: `Variant = "name"` per variant. Adds serde,
/// `ToSchema` and `sqlx::Type` (TEXT-backed: `status AS "status: RunStatus"` in
/// `query!`), `NAMES`, `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema, sqlx::Type,
        )]
        #[sqlx(type_name = "text")]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] #[sqlx(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err($crate::domain::names::UnknownName { value: other.to_string(), expected: Self::NAMES }),
                }
            }
        }
    };
}

pub(crate) use text_enum;

/// Gives `$ty` the spec schema of a closed set whose names live in a list the code runs on
/// (a registry, an `ALL` array) rather than in a `text_enum!`: a string `enum` of exactly
/// those names, as the component `$name`. A new entry in the list is in the spec by itself.
macro_rules! names_schema {
    ($ty:ty, $name:literal, $description:literal, $names:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .enum_values(Some($names))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
        }
    };
}
pub(crate) use names_schema;

#[cfg(test)]
mod tests {
    text_enum! {
        /// A set to test the macro with.
        pub enum Light {
            Red = "red",
            AmberFlashing = "amber_flashing",
        }
    }

    #[test]
    fn one_literal_names_a_variant_everywhere() {
        for light in Light::ALL {
            let json = serde_json::to_value(light).unwrap();
            assert_eq!(json, serde_json::json!(light.as_str()));
            assert_eq!(serde_json::from_value::<Light>(json).unwrap(), *light);
            assert_eq!(light.as_str().parse::<Light>(), Ok(*light));
            assert_eq!(light.to_string(), light.as_str());
        }
        assert_eq!(Light::NAMES, ["red", "amber_flashing"]);
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = "green".parse::<Light>().unwrap_err();
        assert_eq!(err.to_string(), "unknown value `green` (one of red, amber_flashing)");
    }
}
