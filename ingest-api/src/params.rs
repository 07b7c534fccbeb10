//! Query parameters arrive as text and are parsed here, so a bad one is a 422 that names it.

use crate::error::ApiError;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A number within `range`, `default` when absent.
pub fn parse_number<T>(
    field: &str,
    text: Option<&str>,
    default: T,
    range: RangeInclusive<T>,
) -> Result<T, ApiError>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    let Some(text) = text else {
        return Ok(default);
    };
    let value: T = text
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid(field, format!("'{text}' is not a whole number")))?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// A page size: 1 to `max`, `default` when absent.
pub fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    parse_number("limit", text, default, 1..=max)
}

/// An optional text parameter; blank counts as absent.
pub fn non_blank(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}
