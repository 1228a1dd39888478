//! The checked newtypes read from the read model's text columns (feature `sqlx`): a column
//! decodes as text and then through the type's own constructor, the one the wire uses, so a
//! stored value the type refuses is a decoding error rather than a trusted id.

use crate::ids::{AccountId, OwnerId};
use crate::money::Currency;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// `Type` and `Decode` for newtypes stored as text and checked by `TryFrom<String>`.
macro_rules! text_columns {
    ($($newtype:ty),+) => {$(
        impl<DB: Database> Type<DB> for $newtype
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $newtype
        where
            String: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(Self::try_from(String::decode(value)?)?)
            }
        }
    )+};
}

text_columns!(AccountId, OwnerId, Currency);
