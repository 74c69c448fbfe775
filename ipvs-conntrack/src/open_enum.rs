//! The `open_enum!` macro: kernel enums whose unknown values are data (`Unknown(n)`), not errors.

/// Declares an enum over an integer with named variants, an `Unknown(n)` arm,
/// `From` both ways, and `name()` returning the kernel's name.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $ty:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr => $kname:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this library does not know.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( x if x == $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $( $name::$variant => $value, )+
                    $name::Unknown(n) => n,
                }
            }
        }

        impl $name {
            /// The kernel's name of this value (`UNKNOWN` for unknown values).
            pub fn name(&self) -> &'static str {
                match self {
                    $( $name::$variant => $kname, )+
                    $name::Unknown(_) => "UNKNOWN",
                }
            }

            /// Parses a kernel name (case-insensitive).
            pub fn from_name(s: &str) -> Option<Self> {
                $( if s.eq_ignore_ascii_case($kname) { return Some($name::$variant); } )+
                None
            }

            /// The raw value.
            pub fn value(&self) -> $ty {
                <$ty>::from(*self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $name::Unknown(n) => write!(f, "UNKNOWN({n})"),
                    other => f.write_str(other.name()),
                }
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

pub(crate) use open_enum;
