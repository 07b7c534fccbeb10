//! `porch tap <topic>`: print a topic's committed records as JSON lines, one per record.
//!
//! Each line is `{"topic","partition","offset","timestamp","key","headers","type","value"}`:
//! `timestamp` is RFC 3339 in UTC with microseconds, `type` the record's full schema name, and
//! `value` the record decoded to JSON, or `{"error", "bytes_base64"}` when it cannot be decoded.
//! Keys and header values are strings, or `{"bytes_base64"}` when they are not UTF-8; an empty
//! value (a tombstone) prints as `null`. Without `--follow` tap stops at the end each partition
//! had when it started; with it, it waits for new records until Ctrl-C or SIGTERM.

use std::io::{self, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use porch_topics::{KafkaConfig, LogRecord, TopicReader};
use serde_json::{json, Map, Value};

/// Where tap starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapFrom {
    /// The oldest record still kept.
    Beginning,
    /// Only records written from now on.
    End,
    /// This offset in every partition read (use with `--partition`).
    Offset(u64),
    /// The first record at or after this instant, microseconds since the epoch.
    Time(i64),
}

impl FromStr for TapFrom {
    type Err = String;

    /// `beginning`, `end`, an offset (`1234`), an RFC 3339 instant (`2025-01-31T12:00:00Z`)
    /// or microseconds since the epoch prefixed with `@` (`@1738324800000000`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "beginning" | "earliest" => return Ok(Self::Beginning),
            "end" | "latest" => return Ok(Self::End),
            _ => {}
        }
        if let Some(micros) = s.strip_prefix('@') {
            return micros
                .parse()
                .map(Self::Time)
                .map_err(|_| format!("`{s}`: expected @ and microseconds since the epoch"));
        }
        if let Ok(offset) = s.parse() {
            return Ok(Self::Offset(offset));
        }
        parse_rfc3339(s).map(Self::Time).ok_or_else(|| {
            format!(
                "`{s}`: expected beginning, end, an offset, an RFC 3339 instant or @microseconds"
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct TapArgs {
    /// Catalogue name (the cluster prefix is added).
    pub topic: String,
    pub from: TapFrom,
    /// Read only this partition; all of them otherwise.
    pub partition: Option<u32>,
    /// Keep waiting for new records instead of stopping at the end.
    pub follow: bool,
    /// Stop after this many records.
    pub max: Option<usize>,
}

/// Decodes a record value to its full schema name and JSON.
pub type Decode<'a> = &'a dyn Fn(&[u8]) -> Result<(String, Value), String>;

/// How long one poll waits; bounds how late tap notices Ctrl-C or the end of its read.
const POLL: Duration = Duration::from_millis(200);

pub fn run(args: TapArgs, cfg: &KafkaConfig, decode: Decode<'_>) -> anyhow::Result<()> {
    let topic = args.topic.as_str();
    let mut reader = TopicReader::new(cfg)?;
    let count = reader
        .partition_count(topic)
        .with_context(|| format!("tap {}", cfg.physical(topic)))?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p < count => vec![p],
        Some(p) => bail!(
            "{} has {count} partitions, no partition {p}",
            cfg.physical(topic)
        ),
        None => (0..count).collect(),
    };
    let ends = reader.end_offsets(topic)?;
    let starts: Vec<u64> = match args.from {
        // Below the log start: the reader resets to the earliest record kept.
        TapFrom::Beginning => vec![0; count as usize],
        TapFrom::End => ends.clone(),
        TapFrom::Offset(o) => vec![o; count as usize],
        TapFrom::Time(micros) => reader.offsets_for_time(topic, micros)?,
    };
    // Partitions still to read up to their end; only meaningful without --follow.
    let mut pending: Vec<u32> = partitions
        .iter()
        .copied()
        .filter(|&p| starts[p as usize] < ends[p as usize])
        .collect();
    if (!args.follow && pending.is_empty()) || args.max == Some(0) {
        return Ok(());
    }
    let assignment: Vec<(u32, u64)> = partitions
        .iter()
        .map(|&p| (p, starts[p as usize]))
        .collect();
    reader.assign(topic, &assignment)?;

    let stop = stop_on_signal();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut printed = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let polled = match reader.poll(POLL) {
            Ok(polled) => polled,
            Err(e) if args.follow => {
                // A broker restart should not end a long watch; the client reconnects.
                eprintln!("tap: {e}");
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match polled {
            Some(rec) => {
                let line = record_json(&rec, decode);
                if !write_line(&mut out, &line)? {
                    return Ok(());
                }
                printed += 1;
                if args.max.is_some_and(|max| printed >= max) {
                    break;
                }
                if rec.offset + 1 >= ends[rec.partition as usize] {
                    pending.retain(|&p| p != rec.partition);
                }
            }
            None => {
                if !flush(&mut out)? {
                    return Ok(());
                }
                // Control records move a partition's position without yielding a record.
                let mut done = Vec::new();
                for &p in &pending {
                    if reader
                        .position(p)?
                        .is_some_and(|pos| pos >= ends[p as usize])
                    {
                        done.push(p);
                    }
                }
                pending.retain(|p| !done.contains(p));
            }
        }
        if !args.follow && pending.is_empty() {
            break;
        }
    }
    flush(&mut out)?;
    Ok(())
}

/// Writes one JSON line; `false` when the reader of stdout has gone (`porch tap … | head`).
fn write_line(out: &mut impl Write, line: &Value) -> anyhow::Result<bool> {
    let written = serde_json::to_writer(&mut *out, line)
        .map_err(io::Error::from)
        .and_then(|()| out.write_all(b"\n"));
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn flush(out: &mut impl Write) -> anyhow::Result<bool> {
    match out.flush() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A flag raised by the first Ctrl-C or SIGTERM.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let watcher = move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        flag.store(true, Ordering::Relaxed);
    };
    // Without the watcher tap still works; it just ends the default way on a signal.
    let _ = std::thread::Builder::new()
        .name("tap-signals".into())
        .spawn(watcher);
    stop
}

/// The JSON line of one record.
pub fn record_json(rec: &LogRecord, decode: Decode<'_>) -> Value {
    let key = if rec.key.is_empty() {
        Value::Null
    } else {
        text_or_bytes(&rec.key)
    };
    let mut headers = Map::new();
    for (name, value) in &rec.headers {
        headers.insert(name.clone(), text_or_bytes(value));
    }
    let (record_type, value) = if rec.value.is_empty() {
        (Value::Null, Value::Null)
    } else {
        match decode(&rec.value) {
            Ok((name, value)) => (Value::String(name), value),
            Err(error) => (
                Value::Null,
                json!({"error": error, "bytes_base64": base64(&rec.value)}),
            ),
        }
    };
    json!({
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": format_rfc3339(rec.timestamp),
        "key": key,
        "headers": headers,
        "type": record_type,
        "value": value,
    })
}

fn text_or_bytes(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "bytes_base64": base64(bytes) }),
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2025-01-31T12:00:00.000000Z` from microseconds since the epoch.
fn format_rfc3339(micros: i64) -> String {
    let (days, rest) = (
        micros.div_euclid(MICROS_PER_DAY),
        micros.rem_euclid(MICROS_PER_DAY),
    );
    let (y, m, d) = civil_from_days(days);
    let secs = rest / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1_000_000
    )
}

/// Microseconds since the epoch of an RFC 3339 instant (`2025-01-31T12:00:00Z`,
/// `2025-01-31T12:00:00.25+01:00`).
fn parse_rfc3339(s: &str) -> Option<i64> {
    fn num(s: &str) -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let (h, mi, sec) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_micros = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<6}", &frac[..digits.min(6)]);
        frac_micros = num(&padded)?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (num(&rest[1..3])? * 3600 + num(&rest[4..6])? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * 1_000_000 + frac_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_rfc3339(1_738_324_800_123_456),
            "2025-01-31T12:00:00.123456Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            format_rfc3339(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        for micros in [
            0,
            1_738_324_800_123_456,
            -1,
            951_782_400_000_000,
            4_102_444_799_999_999,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(micros)), Some(micros));
        }
        assert_eq!(
            parse_rfc3339("2025-01-31T13:00:00.5+01:00"),
            Some(1_738_324_800_500_000)
        );
        assert_eq!(parse_rfc3339("2025-01-31T12:00:00"), None);
        assert_eq!(parse_rfc3339("2025-13-01T00:00:00Z"), None);
    }

    #[test]
    fn from_accepts_names_offsets_and_instants() {
        assert_eq!("beginning".parse(), Ok(TapFrom::Beginning));
        assert_eq!("end".parse(), Ok(TapFrom::End));
        assert_eq!("42".parse(), Ok(TapFrom::Offset(42)));
        assert_eq!(
            "@1738324800000000".parse(),
            Ok(TapFrom::Time(1_738_324_800_000_000))
        );
        assert_eq!(
            "2025-01-31T12:00:00Z".parse(),
            Ok(TapFrom::Time(1_738_324_800_000_000))
        );
        assert!("yesterday".parse::<TapFrom>().is_err());
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    fn record(value: &[u8]) -> LogRecord {
        LogRecord {
            topic: "offer.events".into(),
            partition: 3,
            offset: 17,
            timestamp: 1_738_324_800_000_000,
            key: b"acme/p1".to_vec(),
            value: value.to_vec(),
            headers: vec![
                ("traceparent".into(), b"00-abc-01".to_vec()),
                ("raw".into(), vec![0xff, 0x00]),
            ],
        }
    }

    #[test]
    fn a_record_prints_decoded_or_with_its_bytes() {
        let decode = |bytes: &[u8]| -> Result<(String, Value), String> {
            match bytes {
                b"ok" => Ok(("porch.offer.OfferCreated".into(), json!({"sku": "S1"}))),
                _ => Err("unknown schema id 9".into()),
            }
        };
        assert_eq!(
            record_json(&record(b"ok"), &decode),
            json!({
                "topic": "offer.events",
                "partition": 3,
                "offset": 17,
                "timestamp": "2025-01-31T12:00:00.000000Z",
                "key": "acme/p1",
                "headers": {"traceparent": "00-abc-01", "raw": {"bytes_base64": "/wA="}},
                "type": "porch.offer.OfferCreated",
                "value": {"sku": "S1"},
            })
        );
        let bad = record_json(&record(b"foo"), &decode);
        assert_eq!(bad["type"], Value::Null);
        assert_eq!(
            bad["value"],
            json!({"error": "unknown schema id 9", "bytes_base64": "Zm9v"})
        );
        let tombstone = record_json(&record(b""), &decode);
        assert_eq!(
            (&tombstone["type"], &tombstone["value"]),
            (&Value::Null, &Value::Null)
        );
    }
}
