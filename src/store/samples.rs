//! Samples: batched ingest, queries that rebuild [`Sample`]s exactly, and retention.
//!
//! Each [`Sample`] field is a column; `Measurements` fields are `NULL` exactly when the sample
//! has no measurements, the `error_*` columns exactly when it has no error, so both options
//! round-trip independently. The raw text lives in `sample_texts` so it can be pruned sooner
//! than the measurements. A `NaN` latency is stored as `NULL` (SQLite has no NaN) and read back
//! as `NaN`.

use super::rounds::RoundId;
use super::{Result, Store, StoreError};
use crate::sample::{
    ErrorKind, FinishReason, Measurements, Sample, SampleError, StructuredOutcome,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

/// Which samples [`Store::samples`] returns. Every set field narrows the result; the default
/// returns everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleQuery {
    pub target: Option<String>,
    /// Samples whose request started at or after this time.
    pub since_ms: Option<i64>,
    /// Samples of rounds served by this fingerprint id.
    pub fingerprint: Option<String>,
    /// Only the newest N rounds matching `target` and `fingerprint` (by round start time).
    pub last_rounds: Option<u32>,
    /// Only samples of these probe versions (probe content hashes). An empty list matches none.
    pub probe_hashes: Option<Vec<String>>,
    /// Leave `Sample::text` as `None` instead of reading the raw text (cheaper for statistics).
    pub skip_text: bool,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneStats {
    /// Raw texts removed by the text retention.
    pub texts: u64,
    /// Samples removed (with their texts).
    pub samples: u64,
    /// Rounds removed because none of their samples are left.
    pub rounds: u64,
}

const INSERT_SAMPLE: &str = "INSERT INTO samples (
    round_id, target_id, suite, probe_id, probe_hash, idx, started_at_ms, latency_ms, ttft_ms,
    attempts, finish_reason, input_tokens, response_model, system_fingerprint,
    chars, words, lines, output_tokens, tokens_estimated, truncated, empty, refusal,
    refusal_rule, structured, task_success,
    error_kind, error_status, error_message, error_attempts, error_latency_ms, partial_refusal,
    seed
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
          ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)";

pub(super) const SELECT_SAMPLE: &str =
    "SELECT s.id, t.name, s.suite, s.probe_id, s.probe_hash, s.idx,
    s.started_at_ms, s.latency_ms, s.ttft_ms, s.attempts, s.finish_reason, s.input_tokens,
    s.response_model, s.system_fingerprint,
    s.chars, s.words, s.lines, s.output_tokens, s.tokens_estimated, s.truncated, s.empty,
    s.refusal, s.refusal_rule, s.structured, s.task_success,
    s.error_kind, s.error_status, s.error_message, s.error_attempts, s.error_latency_ms,
    s.partial_refusal, s.seed";

impl Store {
    /// Stores `samples` in `round`, all or none, in one transaction with one prepared statement.
    /// Every sample must belong to the round's target. Updates the round's counts.
    pub fn insert_samples(&mut self, round: RoundId, samples: &[Sample]) -> Result<()> {
        let tx = self.conn.savepoint()?;
        let (target_id, round_target): (i64, String) = tx
            .query_row(
                "SELECT r.target_id, t.name FROM rounds r JOIN targets t ON t.id = r.target_id
                 WHERE r.id = ?1",
                [round.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or(StoreError::UnknownRound(round.0))?;
        if let Some(bad) = samples.iter().find(|s| s.target != round_target) {
            return Err(StoreError::TargetMismatch {
                round: round.0,
                round_target,
                sample_target: bad.target.clone(),
            });
        }
        for s in samples {
            insert_row(&tx, round.0, target_id, s)?;
        }
        let errors = samples.iter().filter(|s| s.is_error()).count();
        tx.execute(
            "UPDATE rounds SET samples = samples + ?2, errors = errors + ?3 WHERE id = ?1",
            params![round.0, samples.len() as i64, errors as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Samples matching `query`, oldest round first, in insertion order within a round.
    pub fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>> {
        let mut sql = String::from(SELECT_SAMPLE);
        sql.push_str(if query.skip_text {
            ", NULL FROM samples s"
        } else {
            ", x.text FROM samples s LEFT JOIN sample_texts x ON x.sample_id = s.id"
        });
        sql.push_str(
            " JOIN targets t ON t.id = s.target_id JOIN rounds r ON r.id = s.round_id WHERE 1",
        );
        let mut args: Vec<Value> = Vec::new();
        const TARGET_ID: &str = "(SELECT id FROM targets WHERE name = ?)";
        if let Some(target) = &query.target {
            sql.push_str(" AND s.target_id = ");
            sql.push_str(TARGET_ID);
            args.push(Value::Text(target.clone()));
        }
        if let Some(since) = query.since_ms {
            sql.push_str(" AND s.started_at_ms >= ?");
            args.push(Value::Integer(since));
        }
        if let Some(fp) = &query.fingerprint {
            sql.push_str(" AND r.fingerprint = ?");
            args.push(Value::Text(fp.clone()));
        }
        if let Some(n) = query.last_rounds {
            sql.push_str(" AND s.round_id IN (SELECT id FROM rounds WHERE 1");
            if let Some(target) = &query.target {
                sql.push_str(" AND target_id = ");
                sql.push_str(TARGET_ID);
                args.push(Value::Text(target.clone()));
            }
            if let Some(fp) = &query.fingerprint {
                sql.push_str(" AND fingerprint = ?");
                args.push(Value::Text(fp.clone()));
            }
            sql.push_str(" ORDER BY started_at_ms DESC, id DESC LIMIT ?)");
            args.push(Value::Integer(n.into()));
        }
        if let Some(hashes) = &query.probe_hashes {
            if hashes.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(" AND s.probe_hash IN (");
            for (i, h) in hashes.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(Value::Text(h.clone()));
            }
            sql.push(')');
        }
        sql.push_str(" ORDER BY r.started_at_ms, s.round_id, s.id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), read_sample)?;
        rows.map(|r| r?).collect()
    }

    /// Deletes raw texts of samples older than `raw_text_retention_ms`, samples older than
    /// `sample_retention_ms` (ages relative to `now_ms`, by request start), and rounds left
    /// without samples that started before the sample cutoff. Fingerprints and events stay.
    pub fn prune(
        &mut self,
        now_ms: i64,
        raw_text_retention_ms: i64,
        sample_retention_ms: i64,
    ) -> Result<PruneStats> {
        let (text_cutoff, sample_cutoff) =
            retention_cutoffs(now_ms, raw_text_retention_ms, sample_retention_ms)?;
        let tx = self.conn.savepoint()?;
        let texts = tx.execute(
            "DELETE FROM sample_texts WHERE sample_id IN
                 (SELECT id FROM samples WHERE started_at_ms < ?1)",
            [text_cutoff],
        )?;
        let samples = tx.execute(
            "DELETE FROM samples WHERE started_at_ms < ?1",
            [sample_cutoff],
        )?;
        let rounds = tx.execute(
            "DELETE FROM rounds WHERE started_at_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.round_id = rounds.id)",
            [sample_cutoff],
        )?;
        tx.commit()?;
        Ok(PruneStats {
            texts: texts as u64,
            samples: samples as u64,
            rounds: rounds as u64,
        })
    }
}

/// The times before which texts and rows go, under the two retention settings (samples and
/// production traffic keep the same rules).
pub(crate) fn retention_cutoffs(
    now_ms: i64,
    raw_text_retention_ms: i64,
    sample_retention_ms: i64,
) -> Result<(i64, i64)> {
    if raw_text_retention_ms < 0 || sample_retention_ms < 0 {
        return Err(StoreError::Invalid(format!(
            "retention must not be negative (raw text {raw_text_retention_ms} ms, samples \
             {sample_retention_ms} ms)"
        )));
    }
    Ok((
        now_ms.saturating_sub(raw_text_retention_ms),
        now_ms.saturating_sub(sample_retention_ms),
    ))
}

/// Writes one sample row (and its text row) with cached statements.
pub(crate) fn insert_row(
    conn: &Connection,
    round_id: i64,
    target_id: i64,
    s: &Sample,
) -> Result<()> {
    let m = s.measurements.as_ref();
    let e = s.error.as_ref();
    let nan_as_null = |x: f64| (!x.is_nan()).then_some(x);
    conn.prepare_cached(INSERT_SAMPLE)?.execute(params![
        round_id,
        target_id,
        s.suite,
        s.probe_id,
        s.probe_hash,
        s.index,
        s.started_at_ms,
        nan_as_null(s.latency_ms),
        s.ttft_ms.and_then(nan_as_null),
        s.attempts,
        s.finish_reason.as_ref().map(FinishReason::as_str),
        s.input_tokens,
        s.response_model,
        s.system_fingerprint,
        m.map(|m| m.chars),
        m.map(|m| m.words),
        m.map(|m| m.lines),
        m.map(|m| m.output_tokens),
        m.map(|m| m.tokens_estimated),
        m.map(|m| m.truncated),
        m.map(|m| m.empty),
        m.map(|m| m.refusal),
        m.and_then(|m| m.refusal_rule.as_deref()),
        m.and_then(|m| m.structured).map(StructuredOutcome::as_str),
        m.and_then(|m| m.task_success),
        e.map(|e| e.kind.as_str()),
        e.and_then(|e| e.status),
        e.map(|e| e.message.as_str()),
        e.map(|e| e.attempts),
        e.and_then(|e| nan_as_null(e.latency_ms)),
        m.map(|m| m.partial_refusal),
        // SQLite integers are signed: the seed's bits are kept as they are.
        s.seed.map(|x| x as i64),
    ])?;
    if let Some(text) = &s.text {
        let id = conn.last_insert_rowid();
        conn.prepare_cached("INSERT INTO sample_texts (sample_id, text) VALUES (?1, ?2)")?
            .execute(params![id, text])?;
    }
    Ok(())
}

/// The exact name of a canonical reason, or `Other` verbatim. Unlike [`FinishReason::parse`]
/// this does not fold provider aliases, so `Other("eos")` reads back as itself.
fn decode_finish_reason(s: String) -> FinishReason {
    match s.as_str() {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" => FinishReason::ToolCalls,
        _ => FinishReason::Other(s),
    }
}

pub(super) fn read_sample(r: &Row<'_>) -> rusqlite::Result<Result<Sample>> {
    let id: i64 = r.get(0)?;
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "samples",
        row: id,
        detail,
    };
    let measurements = match r.get::<_, Option<u32>>(14)? {
        None => None,
        Some(chars) => {
            let structured = match r.get::<_, Option<String>>(23)? {
                None => None,
                Some(s) => match StructuredOutcome::parse(&s) {
                    Some(o) => Some(o),
                    None => return Ok(Err(corrupt(format!("unknown structured outcome {s:?}")))),
                },
            };
            Some(Measurements {
                chars,
                words: r.get(15)?,
                lines: r.get(16)?,
                output_tokens: r.get(17)?,
                tokens_estimated: r.get(18)?,
                truncated: r.get(19)?,
                empty: r.get(20)?,
                refusal: r.get(21)?,
                refusal_rule: r.get(22)?,
                partial_refusal: r.get::<_, Option<bool>>(30)?.unwrap_or(false),
                structured,
                task_success: r.get(24)?,
            })
        }
    };
    let error = match r.get::<_, Option<String>>(25)? {
        None => None,
        Some(kind) => {
            let Some(kind) = ErrorKind::parse(&kind) else {
                return Ok(Err(corrupt(format!("unknown error kind {kind:?}"))));
            };
            Some(SampleError {
                kind,
                status: r.get(26)?,
                message: r.get::<_, Option<String>>(27)?.unwrap_or_default(),
                attempts: r.get(28)?,
                latency_ms: r.get::<_, Option<f64>>(29)?.unwrap_or(f64::NAN),
            })
        }
    };
    Ok(Ok(Sample {
        target: r.get(1)?,
        suite: r.get(2)?,
        probe_id: r.get(3)?,
        probe_hash: r.get(4)?,
        index: r.get(5)?,
        started_at_ms: r.get(6)?,
        latency_ms: r.get::<_, Option<f64>>(7)?.unwrap_or(f64::NAN),
        ttft_ms: r.get(8)?,
        attempts: r.get(9)?,
        finish_reason: r.get::<_, Option<String>>(10)?.map(decode_finish_reason),
        input_tokens: r.get(11)?,
        response_model: r.get(12)?,
        system_fingerprint: r.get(13)?,
        measurements,
        error,
        seed: r.get::<_, Option<i64>>(31)?.map(|x| x as u64),
        text: r.get(32)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(target: &str, probe: &str, t: i64) -> Sample {
        Sample {
            seed: None,
            target: target.into(),
            suite: "core".into(),
            probe_id: probe.into(),
            probe_hash: format!("hash-{probe}"),
            index: 0,
            started_at_ms: t,
            latency_ms: 12.5,
            ttft_ms: None,
            attempts: 1,
            finish_reason: None,
            input_tokens: None,
            response_model: None,
            system_fingerprint: None,
            measurements: Some(Measurements::default()),
            error: None,
            text: None,
        }
    }

    fn query(target: &str) -> SampleQuery {
        SampleQuery {
            target: Some(target.into()),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_keeps_every_field_and_variant() {
        let mut store = Store::open_in_memory().unwrap();
        let round = store.begin_round("t", Some("fp"), 1).unwrap();
        let mut full = base("t", "full", 100);
        full.index = 7;
        full.latency_ms = 1234.0625;
        full.ttft_ms = Some(0.5);
        full.attempts = 3;
        full.finish_reason = Some(FinishReason::Other("eos".into()));
        full.input_tokens = Some(u32::MAX);
        full.response_model = Some("qwen2.5:7b".into());
        full.system_fingerprint = Some("fp_44709d6fcb".into());
        // Above i64::MAX: kept bit for bit in the signed column.
        full.seed = Some(u64::MAX - 5);
        full.measurements = Some(Measurements {
            chars: 4000,
            words: 700,
            lines: 40,
            output_tokens: 950,
            tokens_estimated: true,
            truncated: true,
            empty: false,
            refusal: true,
            refusal_rule: Some("provider:refusal_field".into()),
            partial_refusal: false,
            structured: Some(StructuredOutcome::Truncated),
            task_success: Some(false),
        });
        full.text = Some("héllo\n\u{0}wörld 🦀".into());
        let mut errored = base("t", "err", 101);
        errored.measurements = None;
        errored.error = Some(SampleError {
            kind: ErrorKind::HttpStatus,
            status: Some(503),
            message: "server error: overloaded".into(),
            attempts: 4,
            latency_ms: 812.25,
        });
        let mut empty_text = base("t", "empty", 102);
        empty_text.text = Some(String::new());
        empty_text.finish_reason = Some(FinishReason::ContentFilter);
        let mut neither = base("t", "neither", 103);
        neither.measurements = None;
        let mut reasons = Vec::new();
        for (i, fr) in [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ToolCalls,
            FinishReason::Other("weird".into()),
        ]
        .into_iter()
        .enumerate()
        {
            let mut s = base("t", "reasons", 200 + i as i64);
            s.index = i as u32;
            s.finish_reason = Some(fr);
            reasons.push(s);
        }
        let mut all = vec![full, errored, empty_text, neither];
        all.extend(reasons);
        for kind in ErrorKind::ALL {
            let mut s = base("t", "kinds", 300);
            s.measurements = None;
            s.error = Some(SampleError::new(kind, format!("{kind} happened")));
            all.push(s);
        }
        for outcome in StructuredOutcome::ALL {
            let mut s = base("t", "outcomes", 400);
            s.measurements.as_mut().unwrap().structured = Some(outcome);
            all.push(s);
        }
        store.insert_samples(round, &all).unwrap();
        assert_eq!(store.samples(&query("t")).unwrap(), all);

        let no_text = store
            .samples(&SampleQuery {
                skip_text: true,
                ..query("t")
            })
            .unwrap();
        assert!(no_text.iter().all(|s| s.text.is_none()));
        assert_eq!(no_text.len(), all.len());

        let info = store.round(round).unwrap().unwrap();
        assert_eq!(info.samples as usize, all.len());
        assert_eq!(info.errors as usize, 1 + ErrorKind::ALL.len());
    }

    #[test]
    fn nan_latency_reads_back_as_nan() {
        let mut store = Store::open_in_memory().unwrap();
        let round = store.begin_round("t", None, 1).unwrap();
        let mut s = base("t", "p", 1);
        s.latency_ms = f64::NAN;
        store.insert_samples(round, &[s]).unwrap();
        assert!(store.samples(&query("t")).unwrap()[0].latency_ms.is_nan());
    }

    #[test]
    fn batch_is_all_or_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        let round = store.begin_round("t", None, 1).unwrap();
        let batch = vec![base("t", "a", 1), base("other", "b", 2)];
        let err = store.insert_samples(round, &batch).unwrap_err();
        assert!(matches!(err, StoreError::TargetMismatch { .. }), "{err}");
        assert!(store.samples(&SampleQuery::default()).unwrap().is_empty());
        assert!(matches!(
            store.insert_samples(RoundId(77), &batch[..1]),
            Err(StoreError::UnknownRound(77))
        ));
        assert_eq!(store.round(round).unwrap().unwrap().samples, 0);
    }

    /// Three rounds: fp A at 1000 and 2000, fp B at 3000; two probes each.
    fn three_rounds() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        for (i, (fp, t)) in [("A", 1000), ("A", 2000), ("B", 3000)]
            .into_iter()
            .enumerate()
        {
            let r = store.begin_round("t", Some(fp), t).unwrap();
            let mut a = base("t", "a", t + 1);
            let mut b = base("t", "b", t + 2);
            a.index = i as u32;
            b.index = i as u32;
            store.insert_samples(r, &[a, b]).unwrap();
            store
                .finish_round(r, t + 10, super::super::RoundStatus::Completed)
                .unwrap();
        }
        let r = store.begin_round("u", Some("A"), 5000).unwrap();
        store.insert_samples(r, &[base("u", "a", 5001)]).unwrap();
        store
    }

    fn times(samples: &[Sample]) -> Vec<i64> {
        samples.iter().map(|s| s.started_at_ms).collect()
    }

    #[test]
    fn queries_narrow_by_each_field() {
        let store = three_rounds();
        let q = |q: SampleQuery| times(&store.samples(&q).unwrap());
        assert_eq!(q(SampleQuery::default()).len(), 7);
        assert_eq!(q(query("t")), vec![1001, 1002, 2001, 2002, 3001, 3002]);
        assert_eq!(
            q(SampleQuery {
                since_ms: Some(2002),
                ..query("t")
            }),
            vec![2002, 3001, 3002]
        );
        assert_eq!(
            q(SampleQuery {
                fingerprint: Some("A".into()),
                ..query("t")
            }),
            vec![1001, 1002, 2001, 2002]
        );
        assert_eq!(
            q(SampleQuery {
                last_rounds: Some(2),
                ..query("t")
            }),
            vec![2001, 2002, 3001, 3002]
        );
        assert_eq!(
            q(SampleQuery {
                last_rounds: Some(1),
                fingerprint: Some("A".into()),
                ..query("t")
            }),
            vec![2001, 2002]
        );
        assert_eq!(
            q(SampleQuery {
                probe_hashes: Some(vec!["hash-b".into(), "hash-zzz".into()]),
                ..query("t")
            }),
            vec![1002, 2002, 3002]
        );
        assert!(
            q(SampleQuery {
                probe_hashes: Some(vec![]),
                ..query("t")
            })
            .is_empty()
        );
        assert!(q(query("nobody")).is_empty());
        // Without a target, last_rounds counts rounds of every target.
        assert_eq!(
            q(SampleQuery {
                last_rounds: Some(1),
                ..Default::default()
            }),
            vec![5001]
        );
    }

    #[test]
    fn prune_removes_texts_then_samples_then_empty_rounds() {
        let mut store = Store::open_in_memory().unwrap();
        let mut rounds = Vec::new();
        for t in [1000, 2000, 3000] {
            let r = store.begin_round("t", None, t).unwrap();
            let mut s = base("t", "p", t + 1);
            s.text = Some(format!("text at {t}"));
            store.insert_samples(r, &[s]).unwrap();
            rounds.push(r);
        }
        // now = 3500: texts older than 1000 ms (before 2500) go, samples older than 2000 ms
        // (before 1500) go.
        let stats = store.prune(3500, 1000, 2000).unwrap();
        assert_eq!(
            stats,
            PruneStats {
                texts: 2,
                samples: 1,
                rounds: 1
            }
        );
        let left = store.samples(&query("t")).unwrap();
        assert_eq!(times(&left), vec![2001, 3001]);
        assert_eq!(left[0].text, None);
        assert_eq!(left[1].text.as_deref(), Some("text at 3000"));
        assert_eq!(store.round(rounds[0]).unwrap(), None);
        assert!(store.round(rounds[1]).unwrap().is_some());
        let orphans: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM sample_texts WHERE sample_id NOT IN (SELECT id FROM samples)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        // Pruning again removes nothing; i64::MAX retention keeps everything.
        assert_eq!(
            store.prune(3500, 1000, 2000).unwrap(),
            PruneStats::default()
        );
        assert_eq!(
            store.prune(i64::MAX, i64::MAX, i64::MAX).unwrap(),
            PruneStats::default()
        );
        assert!(matches!(store.prune(0, -1, 0), Err(StoreError::Invalid(_))));
    }
}
