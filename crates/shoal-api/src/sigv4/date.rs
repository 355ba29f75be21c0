//! Request dates: parsing `X-Amz-Date` (ISO 8601 basic) and `Date` (RFC 1123), and the ±15 minute
//! clock-skew window.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::AuthError;

/// How far a request's date may be from the server clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// A request date, as seconds since the Unix epoch and in the SigV4 form `yyyymmddThhmmssZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestDate {
    pub unix: i64,
    pub iso: [u8; 16],
}

impl RequestDate {
    /// `yyyymmddThhmmssZ`.
    pub fn iso_str(&self) -> &str {
        std::str::from_utf8(&self.iso).unwrap_or("")
    }

    /// `yyyymmdd`, the credential-scope date.
    pub fn day_str(&self) -> &str {
        self.iso_str().get(..8).unwrap_or("")
    }
}

/// Parses `yyyymmddThhmmssZ`.
pub(crate) fn parse_amz_date(value: &str) -> Option<RequestDate> {
    let b = value.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    from_datetime(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an RFC 1123 HTTP date, `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn parse_http_date(value: &str) -> Option<RequestDate> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parsed = PrimitiveDateTime::parse(value.trim(), &format).ok()?;
    from_datetime(parsed.assume_utc())
}

/// The request date for Unix time `unix`, if it is a representable four-digit-year date.
pub(crate) fn from_unix(unix: i64) -> Option<RequestDate> {
    from_datetime(OffsetDateTime::from_unix_timestamp(unix).ok()?)
}

fn from_datetime(dt: OffsetDateTime) -> Option<RequestDate> {
    let year = u32::try_from(dt.year()).ok().filter(|y| *y <= 9999)?;
    let mut iso = [0u8; 16];
    let fields: [(usize, u32, usize); 6] = [
        (0, year, 4),
        (4, u32::from(u8::from(dt.month())), 2),
        (6, u32::from(dt.day()), 2),
        (9, u32::from(dt.hour()), 2),
        (11, u32::from(dt.minute()), 2),
        (13, u32::from(dt.second()), 2),
    ];
    for (start, mut value, width) in fields {
        for i in (0..width).rev() {
            let slot = iso.get_mut(start + i)?;
            // `value % 10` is below 10, so the cast cannot truncate.
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    *iso.get_mut(8)? = b'T';
    *iso.get_mut(15)? = b'Z';
    Some(RequestDate {
        unix: dt.unix_timestamp(),
        iso,
    })
}

/// Seconds since the Unix epoch for `now` (negative before it), saturating far outside any real clock.
pub(crate) fn unix_seconds(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Checks that `request` is within [`MAX_CLOCK_SKEW_SECS`] of `now`, with DynamoDB's messages.
///
/// # Errors
/// [`AuthError::InvalidSignature`] `Signature expired: ...` or `Signature not yet current: ...`.
pub(crate) fn check_skew(request: &RequestDate, now: SystemTime) -> Result<(), AuthError> {
    let now = unix_seconds(now);
    let earliest = now.saturating_sub(MAX_CLOCK_SKEW_SECS);
    let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
    let show = |unix: i64| {
        from_unix(unix)
            .map(|d| d.iso_str().to_owned())
            .unwrap_or_default()
    };
    if request.unix < earliest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            request.iso_str(),
            show(earliest),
            show(now)
        )));
    }
    if request.unix > latest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            request.iso_str(),
            show(latest),
            show(now)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(iso: &str) -> SystemTime {
        let d = parse_amz_date(iso).unwrap();
        UNIX_EPOCH + Duration::from_secs(u64::try_from(d.unix).unwrap())
    }

    #[test]
    fn amz_date_round_trips() {
        let d = parse_amz_date("20240229T235958Z").unwrap();
        assert_eq!(d.iso_str(), "20240229T235958Z");
        assert_eq!(d.day_str(), "20240229");
        assert_eq!(d.unix, 1_709_251_198);
    }

    #[test]
    fn malformed_amz_dates_are_rejected() {
        for bad in [
            "",
            "20240230T000000Z",
            "20241301T000000Z",
            "2024010T000000Z",
            "20240101T250000Z",
            "20240101 000000Z",
            "20240101T000000",
            "+0240101T000000Z",
            "２0240101T000000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn http_date_parses() {
        let d = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(d.iso_str(), "19941106T084937Z");
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
    }

    #[test]
    fn skew_window_is_fifteen_minutes_inclusive() {
        let now = at("20240101T002500Z");
        assert!(check_skew(&parse_amz_date("20240101T001000Z").unwrap(), now).is_ok());
        assert!(check_skew(&parse_amz_date("20240101T004000Z").unwrap(), now).is_ok());
        assert_eq!(
            check_skew(&parse_amz_date("20240101T000000Z").unwrap(), now),
            Err(AuthError::InvalidSignature(
                "Signature expired: 20240101T000000Z is now earlier than 20240101T001000Z \
                 (20240101T002500Z - 15 min.)"
                    .to_owned()
            ))
        );
        assert_eq!(
            check_skew(&parse_amz_date("20240101T010000Z").unwrap(), now),
            Err(AuthError::InvalidSignature(
                "Signature not yet current: 20240101T010000Z is still later than 20240101T004000Z \
                 (20240101T002500Z + 15 min.)"
                    .to_owned()
            ))
        );
    }
}
