//! Pull cursors: opaque tokens naming (outbox id, epoch, seq), and how a cursor that does not
//! belong to the current epoch is answered with the position to resume from.

use crate::store::OutboxState;

/// Version byte of the token layout.
const VERSION: u8 = 1;
/// version(1) outbox id(8) epoch(8) seq(8).
const LEN: usize = 25;

/// A decoded cursor: every record with `seq` at or below this one has been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The outbox (database) the cursor belongs to.
    pub outbox_id: [u8; 8],
    /// The outbox epoch it was issued in.
    pub epoch: u64,
    /// Position: the seq of the last record delivered (0 = before everything).
    pub seq: i64,
}

/// Why a token is not a usable cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// Not a token this server issues.
    #[error("malformed cursor {token:?}: {reason}")]
    Malformed {
        /// The token, as given.
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A well-formed cursor of another gateway or database, or of an epoch whose tail may
    /// have been lost.
    #[error("cursor is not valid in outbox epoch {epoch}: {reason}; resume from cursor {resume}")]
    Stale {
        /// The current epoch.
        epoch: u64,
        /// Why it is not valid.
        reason: &'static str,
        /// Token of the position to resume from.
        resume: String,
    },
}

impl Cursor {
    /// The token.
    pub fn encode(&self) -> String {
        let mut b = [0u8; LEN];
        b[0] = VERSION;
        b[1..9].copy_from_slice(&self.outbox_id);
        b[9..17].copy_from_slice(&self.epoch.to_be_bytes());
        b[17..25].copy_from_slice(&self.seq.to_be_bytes());
        hex::encode(b)
    }

    /// Parses a token.
    pub fn decode(token: &str) -> Result<Cursor, CursorError> {
        let bad = |reason| CursorError::Malformed {
            token: token.chars().take(80).collect(),
            reason,
        };
        let b = hex::decode(token).map_err(|_| bad("not hex"))?;
        let b: [u8; LEN] = b.try_into().map_err(|_| bad("wrong length"))?;
        if b[0] != VERSION {
            return Err(bad("unknown version"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[1..9]);
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&b[9..17]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[17..25]);
        let seq = i64::from_be_bytes(seq);
        if seq < 0 {
            return Err(bad("negative position"));
        }
        Ok(Cursor {
            outbox_id: id,
            epoch: u64::from_be_bytes(epoch),
            seq,
        })
    }
}

/// The outbox id of `state` as bytes (zeros if unset, which no cursor carries).
pub fn outbox_id(state: &OutboxState) -> [u8; 8] {
    let mut id = [0u8; 8];
    if let Ok(b) = hex::decode(&state.outbox_id) {
        if b.len() == 8 {
            id.copy_from_slice(&b);
        }
    }
    id
}

/// A cursor at `seq` in the current epoch of `state`.
pub fn at(state: &OutboxState, seq: i64) -> Cursor {
    Cursor {
        outbox_id: outbox_id(state),
        epoch: state.epoch(),
        seq,
    }
}

/// Resolves a client's token against the committed state: `Ok(seq)` to continue after, or a
/// [`CursorError`] naming where to resume. An empty token means "from the oldest record held".
pub fn resolve(token: &str, state: &OutboxState) -> Result<i64, CursorError> {
    if token.is_empty() {
        return Ok(0);
    }
    let c = Cursor::decode(token)?;
    let current = state.epoch();
    let stale = |reason, seq: i64| CursorError::Stale {
        epoch: current,
        reason,
        resume: at(state, seq.max(0)).encode(),
    };
    if c.outbox_id != outbox_id(state) {
        return Err(stale("it belongs to another gateway or database", 0));
    }
    if c.epoch == current {
        return Ok(c.seq);
    }
    // The records of an older epoch are trustworthy up to the tail that survived into the
    // next one; an epoch this outbox never had (a restored backup) up to the current start.
    let survived = if c.epoch < current {
        state
            .epochs
            .iter()
            .find(|(e, _)| *e > c.epoch)
            .map_or(0, |(_, start)| *start)
    } else {
        state.epochs.last().map_or(0, |(_, start)| *start)
    };
    let reason = if c.epoch < current {
        "the outbox tail may have been lost since it was issued"
    } else {
        "its epoch is unknown here"
    };
    Err(stale(reason, c.seq.min(survived)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(epochs: Vec<(u64, i64)>) -> OutboxState {
        OutboxState {
            outbox_id: "0011223344556677".into(),
            epochs,
            first_seq: 1,
            head_seq: 500,
            records: 500,
            acked_seq: 0,
            unacked: 500,
        }
    }

    #[test]
    fn round_trip_and_malformed_tokens() {
        let c = Cursor {
            outbox_id: [1, 2, 3, 4, 5, 6, 7, 8],
            epoch: 3,
            seq: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        for (token, reason) in [
            ("zz", "not hex"),
            ("0102", "wrong length"),
            (&"02".repeat(25)[..], "unknown version"),
        ] {
            match Cursor::decode(token) {
                Err(CursorError::Malformed { reason: r, .. }) => assert_eq!(r, reason),
                other => panic!("{token}: {other:?}"),
            }
        }
        let neg = Cursor { seq: -1, ..c };
        assert!(matches!(
            Cursor::decode(&neg.encode()),
            Err(CursorError::Malformed {
                reason: "negative position",
                ..
            })
        ));
    }

    #[test]
    fn resolution_table() {
        let s = state(vec![(1, 0), (2, 300), (3, 450)]);
        let id = outbox_id(&s);
        let tok = |epoch, seq| {
            Cursor {
                outbox_id: id,
                epoch,
                seq,
            }
            .encode()
        };
        let foreign = Cursor {
            outbox_id: [9; 8],
            epoch: 3,
            seq: 10,
        }
        .encode();
        // (token, Ok(seq) or Err(resume seq))
        let table: Vec<(String, Result<i64, i64>)> = vec![
            (String::new(), Ok(0)),
            (tok(3, 470), Ok(470)),
            (tok(3, 0), Ok(0)),
            // epoch 1 survived up to 300 (start of 2)
            (tok(1, 250), Err(250)),
            (tok(1, 320), Err(300)),
            // epoch 2 survived up to 450
            (tok(2, 460), Err(450)),
            // unknown future epoch: current start
            (tok(7, 480), Err(450)),
            (foreign, Err(0)),
        ];
        for (token, want) in table {
            match (resolve(&token, &s), want) {
                (Ok(seq), Ok(w)) => assert_eq!(seq, w, "{token}"),
                (Err(CursorError::Stale { resume, epoch, .. }), Err(w)) => {
                    assert_eq!(epoch, 3);
                    let r = Cursor::decode(&resume).unwrap();
                    assert_eq!((r.epoch, r.seq, r.outbox_id), (3, w, id), "{token}");
                }
                (got, want) => panic!("{token}: got {got:?}, want {want:?}"),
            }
        }
    }
}
