//! Store geometry and the RSSI model: where the sniffers are and what each hears.
//!
//! All sniffers sit on one line, [`ZONE_SPACING_M`] apart, the entrance at x = 0 and the
//! street door at x = [`DOOR_X_M`]. Received power is log-distance path loss:
//! `RSSI_AT_1M_DBM - PATH_LOSS_DB_PER_DECADE * log10(max(d, 1 m))`, minus [`WALL_LOSS_DB`] for a
//! device outside the store, plus per-frame Gaussian noise of [`NOISE_SIGMA_DB`].
//!
//! With these constants a device standing in zone z (sniffer x ± 3 m) averages about
//! −42.5 dBm at its own sniffer and about −64 dBm at a neighbour 12 m away: ≈ 21 dB of
//! separation, far above the 8 dB the zone logic needs. A passer-by (x ≤ −10 m) is at best
//! −76 dBm at the entrance, below the −70 dBm inside threshold.

/// Distance between neighbouring sniffers, metres.
pub const ZONE_SPACING_M: f64 = 12.0;
/// Position of the street door; anything at a smaller x is outside.
pub const DOOR_X_M: f64 = -4.0;
/// Mean RSSI one metre from a sniffer (typical phone probe at ~15 dBm EIRP).
pub const RSSI_AT_1M_DBM: f64 = -38.0;
/// Path-loss slope, dB per decade of distance (exponent 2.4, indoor with shelving).
pub const PATH_LOSS_DB_PER_DECADE: f64 = 24.0;
/// Extra loss through the shop front for a device outside the store.
pub const WALL_LOSS_DB: f64 = 14.0;
/// Standard deviation of per-frame fading, dB.
pub const NOISE_SIGMA_DB: f64 = 3.0;
/// Frames weaker than this at a sniffer are never captured there.
pub const HEARING_FLOOR_DBM: f64 = -92.0;
/// Probability that a sniffer captures a frame that is above the floor.
pub const HEAR_PROBABILITY: f64 = 0.9;
/// How far a device in a zone wanders from the zone's sniffer (uniform ±, metres).
pub const ZONE_JITTER_M: f64 = 3.0;
/// Where the store AP is mounted (between entrance and the second zone).
pub const AP_X_M: f64 = 6.0;
/// The AP transmits this much stronger than a phone.
pub const AP_TX_ADVANTAGE_DB: f64 = 10.0;

/// x position of the sniffer of `zone` (0 = entrance).
pub fn sniffer_x(zone: usize) -> f64 {
    // Zone index ≤ 7, exact in f64.
    zone as f64 * ZONE_SPACING_M
}

/// Mean RSSI (dBm) at a sniffer at `sniffer_x` of a phone at `device_x`, before noise.
pub fn mean_rssi_dbm(device_x: f64, sniffer_x: f64) -> f64 {
    let d = (device_x - sniffer_x).abs().max(1.0);
    let wall = if device_x < DOOR_X_M {
        WALL_LOSS_DB
    } else {
        0.0
    };
    RSSI_AT_1M_DBM - PATH_LOSS_DB_PER_DECADE * d.log10() - wall
}

/// Rounds a dBm value to the i8 written in radiotap, kept in a plausible receiver range.
pub(crate) fn to_dbm_i8(rssi: f64) -> i8 {
    // Clamped to [-100, -10] first, so the cast cannot overflow.
    rssi.round().clamp(-100.0, -10.0) as i8
}
