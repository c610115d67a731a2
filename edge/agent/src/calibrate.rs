//! `store-edge calibrate`: fits the map from devices present to people present on manual head
//! counts (a CSV of `time,people[,zone]` in store-local time), checks it on held-out days,
//! and stores it as the next calibration version (stored bins from its first day get a new
//! revision with people; nothing is edited). A fit the samples cannot support is refused with
//! its reason, and the calibration in force stays.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use edge_core::presence::{self, Calibration, CalibrationSource, FitError, HeldOut, Sample};
use serde::Serialize;

use crate::store::{self, StoreError};

/// Largest head-count file read, bytes (some hundred thousand lines).
pub const MAX_HEADCOUNTS_BYTES: u64 = 8 << 20;

/// One head count: people present at an instant, in the whole store or one zone.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadCount {
    /// When, UTC ms.
    pub at_ms: i64,
    /// People counted.
    pub people: f64,
    /// The zone; `None`: the whole store.
    pub zone: Option<String>,
}

/// A head-count file that does not read: where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: column {column}: {reason}")]
pub struct HeadcountError {
    /// The file as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The column's name (`time`, `people`, `zone`).
    pub column: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Why a calibration was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrateError {
    /// The head counts do not read.
    #[error(transparent)]
    Headcounts(#[from] HeadcountError),
    /// The file cannot be read.
    #[error("{file}: {reason}")]
    File {
        /// The file as given.
        file: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads head counts: an optional header line `time,people[,zone]`, `#` comments and blank
/// lines skipped; times `YYYY-MM-DD HH:MM[:SS]` in `tz` (a time the clocks skip is an error,
/// one they repeat is its first instant); people a non-negative number; zone one of `zones`
/// or empty for the whole store.
pub fn parse_headcounts(
    text: &str,
    file: &str,
    tz: Tz,
    zones: &[String],
) -> Result<Vec<HeadCount>, HeadcountError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |column: &'static str, reason: String| HeadcountError {
            file: file.to_string(),
            line,
            column,
            reason,
        };
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = l.split(',').map(str::trim).collect();
        if out.is_empty() && cols.first().is_some_and(|c| c.eq_ignore_ascii_case("time")) {
            continue;
        }
        if cols.len() > 3 {
            return Err(err(
                "zone",
                format!("{} columns; expected time,people[,zone]", cols.len()),
            ));
        }
        let time = cols[0];
        let local = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(time, f).ok())
            .ok_or_else(|| {
                err(
                    "time",
                    "not a store-local time YYYY-MM-DD HH:MM[:SS]".to_string(),
                )
            })?;
        let at = tz.from_local_datetime(&local).earliest().ok_or_else(|| {
            err(
                "time",
                format!(
                    "{local} does not exist in {} (the clocks skip it)",
                    tz.name()
                ),
            )
        })?;
        let people = cols
            .get(1)
            .ok_or_else(|| err("people", "missing".to_string()))?;
        let people: f64 = people
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| err("people", "not a non-negative number".to_string()))?;
        let zone = match cols.get(2).copied() {
            None | Some("") => None,
            Some(z) if zones.iter().any(|k| k == z) => Some(z.to_string()),
            Some(_) => {
                return Err(err(
                    "zone",
                    format!("not a configured zone (zones: {})", zones.join(", ")),
                ))
            }
        };
        out.push(HeadCount {
            at_ms: at.timestamp_millis(),
            people,
            zone,
        });
    }
    if out.is_empty() {
        return Err(HeadcountError {
            file: file.to_string(),
            line: text.lines().count().max(1),
            column: "time",
            reason: "no head counts in the file".to_string(),
        });
    }
    Ok(out)
}

/// Reads a head-count file (bounded in size).
pub fn read_headcounts(
    path: &Path,
    tz: Tz,
    zones: &[String],
) -> Result<Vec<HeadCount>, CalibrateError> {
    let file = path.display().to_string();
    let bad = |reason: String| CalibrateError::File {
        file: file.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".to_string()));
    }
    if meta.len() > MAX_HEADCOUNTS_BYTES {
        return Err(bad(format!(
            "{} bytes; head counts are read up to {MAX_HEADCOUNTS_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    Ok(parse_headcounts(&text, &file, tz, zones)?)
}

/// What a calibration run found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Head counts read.
    pub counts: usize,
    /// Counts with no stored presence bin at their time.
    pub without_bin: usize,
    /// Counts whose bin the sniffers heard too little of (capture down).
    pub unheard: usize,
    /// Samples the fit used.
    pub samples: usize,
    /// Days they cover.
    pub days: usize,
    /// The fit, when the samples make one.
    pub fit: Option<Calibration>,
    /// Why not, when they do not.
    pub refused: Option<String>,
    /// The reason label of the refusal.
    pub refused_reason: Option<&'static str>,
    /// How the fit does on each day when fitted on the other days.
    pub held_out: Option<HeldOut>,
    /// The version stored (none on a dry run or a refusal).
    pub version: Option<u32>,
    /// The store-local date from which it is in force.
    pub applies_from: String,
    /// Stored bins re-issued with people (new revisions).
    pub reissued: u64,
}

impl Outcome {
    /// The text `calibrate` prints.
    pub fn render(&self) -> String {
        let mut s = format!(
            "head counts: {} read, {} used over {} day(s); {} without a presence bin, {} in bins the sniffers hardly heard\n",
            self.counts, self.samples, self.days, self.without_bin, self.unheard
        );
        match (&self.fit, &self.refused) {
            (Some(f), _) => {
                let form = match f.slope_tracked {
                    Some(a) => format!(
                        "{a:.3} × tracked devices + {:.3} × estimated devices",
                        f.slope
                    ),
                    None => format!(
                        "{:.3} × devices {} {:.2}",
                        f.slope,
                        if f.intercept < 0.0 { "−" } else { "+" },
                        f.intercept.abs()
                    ),
                };
                s += &format!(
                    "fit: people = {form}   (r {:.2}, residual sd {:.2} people, {} samples)\n",
                    f.r, f.residual_sd, f.samples
                );
            }
            (None, Some(why)) => s += &format!("refused: {why}\n"),
            (None, None) => {}
        }
        match &self.held_out {
            Some(h) => {
                s += &format!(
                    "held out (each day predicted by a fit on the other days): {} day(s), {} samples, mean abs error {:.2} people, r {:.2}\n",
                    h.days, h.samples, h.mae, h.r
                )
            }
            None if self.fit.is_some() => {
                s += "held out: needs head counts on two days or more; the fit is unchecked\n"
            }
            None => {}
        }
        match (self.version, &self.refused) {
            (Some(v), _) => {
                s += &format!(
                    "stored as calibration {v}, in force from {}; {} stored bin(s) re-issued with people (new revisions)\n",
                    self.applies_from, self.reissued
                )
            }
            (None, Some(_)) => s += "nothing stored: the calibration in force stays\n",
            (None, None) => s += "dry run: nothing stored\n",
        }
        s
    }
}

/// Fits the head counts against the stored presence bins of `data_dir` and, unless
/// `dry_run`, stores the calibration in force from `from` (default: the first count's date).
pub fn calibrate(
    data_dir: &Path,
    tz: Tz,
    counts: &[HeadCount],
    from: Option<NaiveDate>,
    dry_run: bool,
    now_ms: i64,
) -> Result<Outcome, CalibrateError> {
    let clock = edge_core::LocalClock::new(tz);
    let reader = store::Reader::open(data_dir)?;
    // Counts per scope, each joined with that scope's bins over the counts' span.
    let mut by_scope: BTreeMap<Option<&str>, Vec<(i64, f64)>> = BTreeMap::new();
    for c in counts {
        by_scope
            .entry(c.zone.as_deref())
            .or_default()
            .push((c.at_ms, c.people));
    }
    let mut samples: Vec<Sample> = Vec::new();
    let (mut without_bin, mut unheard) = (0, 0);
    for (zone, cs) in &by_scope {
        let lo = cs.iter().map(|c| c.0).min().unwrap_or(0);
        let hi = cs.iter().map(|c| c.0).max().unwrap_or(0);
        let records = reader.presence_between(
            lo - presence::BIN_MS,
            hi.saturating_add(presence::BIN_MS),
            *zone,
        )?;
        let j = presence::samples_at(&records, cs);
        without_bin += j.no_bin;
        unheard += j.unheard;
        samples.extend(j.samples);
    }
    drop(reader);
    let days = samples
        .iter()
        .map(|s| s.local_date.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let first_date = counts
        .iter()
        .map(|c| clock.date(c.at_ms))
        .min()
        .unwrap_or_else(|| clock.date(now_ms));
    let from = from.unwrap_or(first_date);
    let mut out = Outcome {
        counts: counts.len(),
        without_bin,
        unheard,
        samples: samples.len(),
        days,
        fit: None,
        refused: None,
        refused_reason: None,
        held_out: presence::held_out(&samples),
        version: None,
        applies_from: clock.local(clock.day_start(from)).to_rfc3339(),
        reissued: 0,
    };
    match Calibration::fit(
        &presence::points(&samples),
        CalibrationSource::Headcounts,
        0,
        now_ms,
    ) {
        Ok(fit) => {
            if !dry_run {
                let (v, n) = store::presence::store_calibration(
                    data_dir,
                    &fit,
                    clock.day_start(from),
                    now_ms,
                )?;
                out.version = Some(v);
                out.reissued = n;
            }
            out.fit = Some(Calibration {
                version: out.version.unwrap_or(0),
                ..fit
            });
        }
        Err(why) => {
            out.refused_reason = Some(why.reason());
            out.refused = Some(refusal(&why));
        }
    }
    Ok(out)
}

fn refusal(why: &FitError) -> String {
    match why {
        FitError::TooFewSamples { .. } => format!(
            "{why}; count people at more times while the sniffers run (each count must fall in a stored 10-minute bin)"
        ),
        _ => why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Vec<String> {
        vec!["entrance".to_string(), "checkout".to_string()]
    }

    #[test]
    fn head_counts_read_with_header_comments_seconds_and_zones() {
        let text = "time,people,zone\n# morning\n2026-03-29 10:00,4\n\n2026-03-29 10:30:15, 6.5 ,checkout\n";
        let got = parse_headcounts(text, "h.csv", chrono_tz::Europe::Paris, &zones()).unwrap();
        assert_eq!(got.len(), 2);
        // Paris is at +02:00 after the change of the night.
        assert_eq!(got[0].at_ms, 1_774_771_200_000);
        assert_eq!((got[0].people, got[0].zone.as_deref()), (4.0, None));
        assert_eq!(got[1].at_ms, 1_774_771_200_000 + 30 * 60_000 + 15_000);
        assert_eq!(
            (got[1].people, got[1].zone.as_deref()),
            (6.5, Some("checkout"))
        );
    }

    #[test]
    fn bad_head_counts_name_line_column_and_reason() {
        let table: &[(&str, usize, &str, &str)] = &[
            ("time,people\n2026-03-29 10:00\n", 2, "people", "missing"),
            ("2026-03-29 10:00,-1\n", 1, "people", "non-negative"),
            ("2026-03-29 10:00,many\n", 1, "people", "non-negative"),
            ("2026-03-29 10:00,NaN\n", 1, "people", "non-negative"),
            ("29/03/2026 10:00,3\n", 1, "time", "YYYY-MM-DD"),
            ("2026-03-29 02:30,3\n", 1, "time", "clocks skip"),
            (
                "2026-03-29 10:00,3,kitchen\n",
                1,
                "zone",
                "not a configured zone",
            ),
            ("2026-03-29 10:00,3,checkout,x\n", 1, "zone", "4 columns"),
            ("time,people\n# none\n", 2, "time", "no head counts"),
        ];
        for &(text, line, column, reason) in table {
            let e =
                parse_headcounts(text, "h.csv", chrono_tz::Europe::Paris, &zones()).unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
            assert!(e.to_string().contains(reason), "{text:?}: {e}");
            assert!(e
                .to_string()
                .starts_with(&format!("h.csv:{line}: column {column}")));
        }
    }
}
