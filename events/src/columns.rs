//! The checked newtypes read from the read model's columns (feature `sqlx`): a column decodes
//! as its raw type (text, bigint) and then through the type's own constructor, the one the wire
//! uses, so a stored value the type refuses is a decoding error rather than a trusted value.

use crate::ids::{AccountId, OwnerId};
use crate::money::{Amount, Currency};
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// `Type` and `Decode` for newtypes stored as `$raw` and checked by `TryFrom<$raw>`.
macro_rules! checked_columns {
    ($raw:ty: $($newtype:ty),+) => {$(
        impl<DB: Database> Type<DB> for $newtype
        where
            $raw: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$raw as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$raw as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $newtype
        where
            $raw: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(Self::try_from(<$raw>::decode(value)?)?)
            }
        }
    )+};
}

checked_columns!(String: AccountId, OwnerId, Currency);
checked_columns!(i64: Amount);
