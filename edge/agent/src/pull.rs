//! `store-edge pull`: the reference cloud client. Pulls records as JSON lines, one output per
//! gateway, and acks only what is durably written.
//!
//! Per batch: write the records, flush and fsync the output, save the state (cursor and output
//! length) atomically, then `Ack`. After a crash the output is cut back to the length the state
//! names, so records written after the last saved state are pulled again rather than doubled.
//! When the gateway answers that the cursor's epoch is gone, the client resumes from the cursor
//! it is given and skips records whose idempotency key it already has.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use edge_proto::v1 as pb;
use pb::sync_client::SyncClient;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::sync::service::RESUME_CURSOR_KEY;

/// Options shared by every endpoint.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Bearer token, if the gateway wants one.
    pub token: Option<String>,
    /// Records per request.
    pub limit: u32,
    /// Keep polling after catching up, every this often.
    pub follow: Option<Duration>,
    /// TLS settings for `https://` endpoints.
    pub tls: Option<ClientTls>,
}

/// TLS for the client: the CA that signed the gateways' certificates and, for mTLS, the
/// client's own certificate and key (PEM).
#[derive(Clone)]
pub struct ClientTls {
    /// CA bundle the gateway certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// Client certificate and key, for gateways that demand one.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Name to check the gateway certificate against (default: the endpoint's host).
    pub domain: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientTls(mtls: {})", self.identity.is_some())
    }
}

/// What the client remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Last cursor written and acked (or about to be acked).
    cursor: String,
    /// Output length covering exactly the records up to `cursor`.
    out_len: u64,
}

fn load_state(path: &Path) -> anyhow::Result<State> {
    match std::fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s)
            .with_context(|| format!("parsing state file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("reading state file {}", path.display())),
    }
}

/// Writes the state durably: temp file, fsync, rename, fsync the directory.
fn save_state(path: &Path, st: &State) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(serde_json::to_string(st)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Idempotency keys already in the output (read when an epoch change forces a re-pull).
fn keys_in(out: &Path) -> anyhow::Result<HashSet<String>> {
    let mut keys = HashSet::new();
    let f = match File::open(out) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(e.into()),
    };
    for line in BufReader::new(f).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        if let Some(k) = v.get("idempotency_key").and_then(|k| k.as_str()) {
            keys.insert(k.to_string());
        }
    }
    Ok(keys)
}

/// One pulled record as a JSON line: serialized straight from the record (a `serde_json::Value`
/// tree per record made the client, not the gateway, the bottleneck of a pull).
#[derive(Debug, Serialize)]
pub struct RecordLine<'a> {
    gateway: &'a str,
    kind: &'a str,
    idempotency_key: &'a str,
    record_key: &'a str,
    revision: u32,
    created_ms: i64,
    cursor: &'a str,
    body: Option<LineBody<'a>>,
}

/// A record's body as its proto message serializes it (`null` when absent).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum LineBody<'a> {
    Visit(&'a pb::Visit),
    Hourly(&'a pb::HourlyAggregate),
    Purchase(&'a pb::Purchase),
    Counter(&'a pb::CounterInterval),
    Health(&'a pb::HealthSnapshot),
    Presence(&'a pb::Presence),
}

impl<'a> RecordLine<'a> {
    /// The line of record `r` pulled from `gateway` (`store_id/gateway_id`).
    pub fn new(gateway: &'a str, r: &'a pb::Record) -> RecordLine<'a> {
        use pb::record::Body;
        RecordLine {
            gateway,
            kind: &r.kind,
            idempotency_key: &r.idempotency_key,
            record_key: &r.record_key,
            revision: r.revision,
            created_ms: r.created_ms,
            cursor: &r.cursor,
            body: r.body.as_ref().map(|b| match b {
                Body::Visit(v) => LineBody::Visit(v),
                Body::Hourly(h) => LineBody::Hourly(h),
                Body::Purchase(p) => LineBody::Purchase(p),
                Body::Counter(c) => LineBody::Counter(c),
                Body::Health(h) => LineBody::Health(h),
                Body::Presence(p) => LineBody::Presence(p),
            }),
        }
    }
}

async fn connect(endpoint: &str, tls: Option<&ClientTls>) -> anyhow::Result<Channel> {
    let mut ep = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("bad endpoint {endpoint:?}"))?
        .connect_timeout(Duration::from_secs(10));
    if let Some(t) = tls {
        let mut cfg = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&t.ca_pem));
        if let Some((cert, key)) = &t.identity {
            cfg = cfg.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        if let Some(d) = &t.domain {
            cfg = cfg.domain_name(d.clone());
        }
        ep = ep.tls_config(cfg).context("configuring TLS")?;
    }
    ep.connect()
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

fn authed<T>(msg: T, token: &Option<String>) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}")
                .parse()
                .context("token is not valid header text")?,
        );
    }
    Ok(req)
}

/// Pulls one gateway into `out`, keeping its cursor in `state_path`. Returns records written.
pub async fn pull_one(
    endpoint: &str,
    out: &Path,
    state_path: &Path,
    opts: &PullOptions,
    cancel: &CancellationToken,
) -> anyhow::Result<u64> {
    let mut client = SyncClient::new(connect(endpoint, opts.tls.as_ref()).await?);
    let info = client
        .get_info(authed(pb::GetInfoRequest {}, &opts.token)?)
        .await
        .with_context(|| format!("{endpoint}: GetInfo"))?
        .into_inner();
    let gateway = format!("{}/{}", info.store_id, info.gateway_id);
    let mut st = load_state(state_path)?;
    // Cut off whatever was written after the last saved state.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    let len = file.metadata()?.len();
    if len < st.out_len {
        bail!(
            "{} is shorter ({len} bytes) than its state file says ({}); it was changed by something else",
            out.display(),
            st.out_len
        );
    }
    file.set_len(st.out_len)?;
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
    let mut seen: Option<HashSet<String>> = None;
    let mut total = 0u64;
    loop {
        let req = pb::PullRequest {
            cursor: st.cursor.clone(),
            limit: opts.limit,
            kinds: Vec::new(),
        };
        let mut stream = match client.pull(authed(req, &opts.token)?).await {
            Ok(s) => s.into_inner(),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                let Some(resume) = s
                    .metadata()
                    .get(RESUME_CURSOR_KEY)
                    .and_then(|v| v.to_str().ok())
                else {
                    bail!("{endpoint}: {}", s.message());
                };
                tracing::warn!(%gateway, reason = s.message(), "cursor refused; resuming where the gateway says");
                st.cursor = resume.to_string();
                seen = Some(keys_in(out)?);
                continue;
            }
            Err(s) => bail!("{endpoint}: Pull: {s}"),
        };
        let mut w = BufWriter::new(&mut file);
        let (mut n, mut last) = (0u32, None);
        while let Some(item) = stream
            .message()
            .await
            .with_context(|| format!("{endpoint}: Pull stream"))?
        {
            let Some(r) = item.record else { continue };
            n += 1;
            last = Some(r.cursor.clone());
            if let Some(keys) = &mut seen {
                if !keys.insert(r.idempotency_key.clone()) {
                    continue;
                }
            }
            serde_json::to_writer(&mut w, &RecordLine::new(&gateway, &r))?;
            w.write_all(b"\n")?;
            total += 1;
        }
        w.flush()?;
        drop(w);
        if let Some(cursor) = last {
            file.sync_all()?;
            st = State {
                cursor: cursor.clone(),
                out_len: file.metadata()?.len(),
            };
            save_state(state_path, &st)?;
            client
                .ack(authed(pb::AckRequest { cursor }, &opts.token)?)
                .await
                .with_context(|| format!("{endpoint}: Ack"))?;
        }
        if n < opts.limit.max(1) {
            match opts.follow {
                Some(every) if !cancel.is_cancelled() => {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                }
                _ => break,
            }
        }
        if cancel.is_cancelled() {
            break;
        }
    }
    Ok(total)
}

/// Where one endpoint's output and state go: the given paths for a single endpoint, else
/// `<out dir>/<n>.jsonl` by endpoint order (stable as long as the list is).
pub fn paths_for(
    endpoints: &[String],
    out: &Path,
    state: Option<&Path>,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    if endpoints.len() == 1 {
        let state = state.map_or_else(|| out.with_extension("state"), Path::to_path_buf);
        return Ok(vec![(out.to_path_buf(), state)]);
    }
    if state.is_some() {
        bail!("--state names one file; with several --endpoint, states live next to each output in the --out directory");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    Ok(endpoints
        .iter()
        .map(|e| {
            let name: String = e
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            (
                out.join(format!("{name}.jsonl")),
                out.join(format!("{name}.state")),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line carries the record's envelope and its body as the proto message serializes it,
    /// and `null` for a record without a body.
    #[test]
    fn a_record_line_is_the_envelope_and_the_body() {
        let visit = pb::Visit {
            visit_key: "ab:1".into(),
            dwell_ms: 60_000,
            ..Default::default()
        };
        let mut r = pb::Record {
            cursor: "c1".into(),
            kind: "visit".into(),
            idempotency_key: "visit/ab:1/0".into(),
            record_key: "ab:1".into(),
            revision: 2,
            created_ms: 5,
            body: Some(pb::record::Body::Visit(visit.clone())),
        };
        let line = serde_json::to_value(RecordLine::new("s/g", &r)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "gateway": "s/g",
                "kind": "visit",
                "idempotency_key": "visit/ab:1/0",
                "record_key": "ab:1",
                "revision": 2,
                "created_ms": 5,
                "cursor": "c1",
                "body": serde_json::to_value(&visit).unwrap(),
            })
        );
        assert_eq!(line["body"]["dwell_ms"], serde_json::json!(60_000));
        r.body = None;
        let line = serde_json::to_value(RecordLine::new("s/g", &r)).unwrap();
        assert_eq!(line["body"], serde_json::Value::Null);
    }
}
