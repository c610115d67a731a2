//! Compiles `storeedge/v1/*.proto` with protox (pure Rust, so no `protoc` on the build machine)
//! and generates prost messages, the tonic client and server, and the descriptor set served by
//! gRPC reflection.

/// Messages stored as JSON bodies in the outbox.
const STORED: [&str; 13] = [
    "Visit",
    "ZoneStay",
    "HourlyAggregate",
    "ZoneHour",
    "Transition",
    "DwellBuckets",
    "Purchase",
    "PurchaseItem",
    "CounterInterval",
    "HealthSnapshot",
    "SourceCounters",
    "Count",
    "Presence",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["storeedge/v1/records.proto", "storeedge/v1/sync.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("storeedge_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    let mut builder = tonic_prost_build::configure();
    // Records are stored as JSON with the proto field names; serde on the generated messages
    // reads them back (and refuses keys the proto does not declare) without a hand-kept mapping.
    for m in STORED {
        builder = builder.message_attribute(
            format!(".storeedge.v1.{m}"),
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        );
    }
    builder.compile_fds(fds)?;
    Ok(())
}
