//! IEEE 802.11 MAC frames: the [`Frame`] view, [`FrameKind`], [`Repr`] for the client-side
//! frames store-edge counts, a [`ProbeRequestRepr`] emitter, and [`client_frame`], which decides
//! whether a frame was transmitted by a client (not an AP).

pub mod ie;

use crate::bytes::{le16, put, slice, tail, u8_at};
use crate::error::{Error, Result};
use crate::mac::MacAddr;

/// Byte offsets of the MAC header.
mod field {
    use core::ops::Range;

    pub const FRAME_CONTROL: usize = 0;
    pub const DURATION: usize = 2;
    pub const ADDR1: Range<usize> = 4..10;
    pub const ADDR2: Range<usize> = 10..16;
    pub const ADDR3: Range<usize> = 16..22;
    pub const SEQ_CTRL: usize = 22;
    pub const ADDR4: Range<usize> = 24..30;
    /// Management / 3-address data header.
    pub const HEADER_3ADDR: usize = 24;
    /// Control frames with only addr1 (CTS, ACK).
    pub const HEADER_CTRL_SHORT: usize = 10;
    /// Control frames with addr1 and addr2 (RTS, PS-Poll, BlockAck...).
    pub const HEADER_CTRL_LONG: usize = 16;
    pub const QOS_LEN: usize = 2;
    pub const HT_CONTROL_LEN: usize = 4;
}

/// Frame type: management.
pub const TYPE_MGMT: u8 = 0;
/// Frame type: control.
pub const TYPE_CTRL: u8 = 1;
/// Frame type: data.
pub const TYPE_DATA: u8 = 2;
/// Frame type: extension.
pub const TYPE_EXT: u8 = 3;

/// Management subtypes.
pub mod subtype {
    /// Association request.
    pub const ASSOC_REQUEST: u8 = 0;
    /// Association response.
    pub const ASSOC_RESPONSE: u8 = 1;
    /// Reassociation request.
    pub const REASSOC_REQUEST: u8 = 2;
    /// Reassociation response.
    pub const REASSOC_RESPONSE: u8 = 3;
    /// Probe request.
    pub const PROBE_REQUEST: u8 = 4;
    /// Probe response.
    pub const PROBE_RESPONSE: u8 = 5;
    /// Beacon.
    pub const BEACON: u8 = 8;
    /// Disassociation.
    pub const DISASSOC: u8 = 10;
    /// Authentication.
    pub const AUTHENTICATION: u8 = 11;
    /// Deauthentication.
    pub const DEAUTH: u8 = 12;
    /// Data subtype: data.
    pub const DATA: u8 = 0;
    /// Data subtype: null (no data).
    pub const NULL_DATA: u8 = 4;
    /// Data subtype: QoS data.
    pub const QOS_DATA: u8 = 8;
    /// Data subtype: QoS null.
    pub const QOS_NULL: u8 = 12;
    /// Control subtype: CTS.
    pub const CTS: u8 = 12;
    /// Control subtype: ACK.
    pub const ACK: u8 = 13;
    /// Control subtype: control frame extension.
    pub const CTRL_EXT: u8 = 6;
    /// Control subtype: control wrapper.
    pub const CTRL_WRAPPER: u8 = 7;
}

/// FC flags (byte 1): to the distribution system.
pub const FLAG_TO_DS: u8 = 0x01;
/// FC flags: from the distribution system.
pub const FLAG_FROM_DS: u8 = 0x02;
/// FC flags: more fragments.
pub const FLAG_MORE_FRAGMENTS: u8 = 0x04;
/// FC flags: retransmission.
pub const FLAG_RETRY: u8 = 0x08;
/// FC flags: power management.
pub const FLAG_PWR_MGT: u8 = 0x10;
/// FC flags: more data.
pub const FLAG_MORE_DATA: u8 = 0x20;
/// FC flags: protected (encrypted) frame.
pub const FLAG_PROTECTED: u8 = 0x40;
/// FC flags: +HTC/order: an HT Control field follows (management and QoS data frames).
pub const FLAG_ORDER: u8 = 0x80;

/// The frames store-edge tells apart; everything else is [`FrameKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// Management, probe request.
    ProbeRequest,
    /// Management, association request.
    AssocRequest,
    /// Management, reassociation request.
    ReassocRequest,
    /// Management, authentication.
    Authentication,
    /// Data, subtype 0.
    Data,
    /// Data, null (subtype 4).
    NullData,
    /// Data, QoS data (subtype 8).
    QosData,
    /// Data, QoS null (subtype 12).
    QosNull,
    /// Anything else (beacons, responses, control frames, CF subtypes...).
    Other,
}

impl FrameKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [FrameKind] = &[
        FrameKind::ProbeRequest,
        FrameKind::AssocRequest,
        FrameKind::ReassocRequest,
        FrameKind::Authentication,
        FrameKind::Data,
        FrameKind::NullData,
        FrameKind::QosData,
        FrameKind::QosNull,
        FrameKind::Other,
    ];

    /// Classifies a (type, subtype) pair.
    pub const fn from_type_subtype(frame_type: u8, subtype: u8) -> FrameKind {
        match (frame_type, subtype) {
            (TYPE_MGMT, subtype::PROBE_REQUEST) => FrameKind::ProbeRequest,
            (TYPE_MGMT, subtype::ASSOC_REQUEST) => FrameKind::AssocRequest,
            (TYPE_MGMT, subtype::REASSOC_REQUEST) => FrameKind::ReassocRequest,
            (TYPE_MGMT, subtype::AUTHENTICATION) => FrameKind::Authentication,
            (TYPE_DATA, subtype::DATA) => FrameKind::Data,
            (TYPE_DATA, subtype::NULL_DATA) => FrameKind::NullData,
            (TYPE_DATA, subtype::QOS_DATA) => FrameKind::QosData,
            (TYPE_DATA, subtype::QOS_NULL) => FrameKind::QosNull,
            _ => FrameKind::Other,
        }
    }

    /// `(type, subtype)` of the kind; `None` for [`FrameKind::Other`].
    pub const fn type_subtype(self) -> Option<(u8, u8)> {
        Some(match self {
            FrameKind::ProbeRequest => (TYPE_MGMT, subtype::PROBE_REQUEST),
            FrameKind::AssocRequest => (TYPE_MGMT, subtype::ASSOC_REQUEST),
            FrameKind::ReassocRequest => (TYPE_MGMT, subtype::REASSOC_REQUEST),
            FrameKind::Authentication => (TYPE_MGMT, subtype::AUTHENTICATION),
            FrameKind::Data => (TYPE_DATA, subtype::DATA),
            FrameKind::NullData => (TYPE_DATA, subtype::NULL_DATA),
            FrameKind::QosData => (TYPE_DATA, subtype::QOS_DATA),
            FrameKind::QosNull => (TYPE_DATA, subtype::QOS_NULL),
            FrameKind::Other => return None,
        })
    }

    /// snake_case name, for logs and metric labels.
    pub const fn label(self) -> &'static str {
        match self {
            FrameKind::ProbeRequest => "probe_request",
            FrameKind::AssocRequest => "assoc_request",
            FrameKind::ReassocRequest => "reassoc_request",
            FrameKind::Authentication => "authentication",
            FrameKind::Data => "data",
            FrameKind::NullData => "null_data",
            FrameKind::QosData => "qos_data",
            FrameKind::QosNull => "qos_null",
            FrameKind::Other => "other",
        }
    }

    /// Length of the fixed fields before the IEs of a management kind we model.
    pub const fn fixed_len(self) -> usize {
        match self {
            FrameKind::AssocRequest => 4,
            FrameKind::ReassocRequest => 10,
            FrameKind::Authentication => 6,
            _ => 0,
        }
    }
}

/// Length of the fixed fields before the IEs of a management subtype, `None` when the body is
/// not fixed fields + IEs (action frames, reserved subtypes).
pub const fn mgmt_fixed_len(subtype: u8) -> Option<usize> {
    Some(match subtype {
        subtype::ASSOC_REQUEST => 4,
        subtype::ASSOC_RESPONSE | subtype::REASSOC_RESPONSE => 6,
        subtype::REASSOC_REQUEST => 10,
        subtype::PROBE_REQUEST => 0,
        subtype::PROBE_RESPONSE | subtype::BEACON => 12,
        subtype::DISASSOC | subtype::DEAUTH => 2,
        subtype::AUTHENTICATION => 6,
        _ => return None,
    })
}

/// A read-only or read-write view of an 802.11 MAC frame (without FCS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking it. Getters return zeros for missing bytes.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps `buffer` and runs [`Frame::check_len`].
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let f = Frame::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks the protocol version (0) and that the whole MAC header is present.
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < 2 {
            return Err(Error::truncated("802.11 frame control", 0, 2, have));
        }
        let version = self.frame_control() & 0x3;
        if version != 0 {
            return Err(Error::UnsupportedVersion {
                what: "802.11 protocol",
                version: u32::from(version),
            });
        }
        let need = self.header_len();
        if have < need {
            return Err(Error::truncated("802.11 header", 0, need, have));
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Frame Control, as the little-endian u16 on the air.
    #[inline]
    pub fn frame_control(&self) -> u16 {
        le16(self.buffer.as_ref(), field::FRAME_CONTROL)
    }

    /// Type: 0 management, 1 control, 2 data, 3 extension.
    #[inline]
    pub fn frame_type(&self) -> u8 {
        (u8_at(self.buffer.as_ref(), field::FRAME_CONTROL) >> 2) & 0x3
    }

    /// Subtype (0..=15).
    #[inline]
    pub fn subtype(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::FRAME_CONTROL) >> 4
    }

    /// FC byte 1 (`FLAG_*`).
    #[inline]
    pub fn flags(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::FRAME_CONTROL + 1)
    }

    /// The kind of frame.
    #[inline]
    pub fn kind(&self) -> FrameKind {
        FrameKind::from_type_subtype(self.frame_type(), self.subtype())
    }

    /// ToDS flag.
    pub fn to_ds(&self) -> bool {
        self.flags() & FLAG_TO_DS != 0
    }

    /// FromDS flag.
    pub fn from_ds(&self) -> bool {
        self.flags() & FLAG_FROM_DS != 0
    }

    /// Retry flag.
    pub fn retry(&self) -> bool {
        self.flags() & FLAG_RETRY != 0
    }

    /// Protected flag.
    pub fn protected(&self) -> bool {
        self.flags() & FLAG_PROTECTED != 0
    }

    /// Duration/ID.
    pub fn duration(&self) -> u16 {
        le16(self.buffer.as_ref(), field::DURATION)
    }

    fn addr(&self, r: core::ops::Range<usize>) -> MacAddr {
        MacAddr::from_slice(slice(self.buffer.as_ref(), r.start, r.end)).unwrap_or_default()
    }

    /// Address 1 (receiver).
    pub fn addr1(&self) -> MacAddr {
        self.addr(field::ADDR1)
    }

    /// Address 2 (transmitter; the client MAC for frames a client sends).
    pub fn addr2(&self) -> MacAddr {
        self.addr(field::ADDR2)
    }

    /// Address 3 (BSSID for management frames).
    pub fn addr3(&self) -> MacAddr {
        self.addr(field::ADDR3)
    }

    /// Address 4, present in data frames with both ToDS and FromDS.
    pub fn addr4(&self) -> Option<MacAddr> {
        self.is_four_address().then(|| self.addr(field::ADDR4))
    }

    /// Sequence Control.
    pub fn seq_ctrl(&self) -> u16 {
        le16(self.buffer.as_ref(), field::SEQ_CTRL)
    }

    /// Sequence number (0..=4095).
    pub fn sequence_number(&self) -> u16 {
        self.seq_ctrl() >> 4
    }

    /// Fragment number (0..=15).
    pub fn fragment_number(&self) -> u8 {
        (self.seq_ctrl() & 0xf) as u8
    }

    fn is_four_address(&self) -> bool {
        self.frame_type() == TYPE_DATA && self.flags() & (FLAG_TO_DS | FLAG_FROM_DS) == 0x3
    }

    /// Data frame with a QoS Control field (subtype bit 3).
    pub fn is_qos_data(&self) -> bool {
        self.frame_type() == TYPE_DATA && self.subtype() & 0x8 != 0
    }

    /// QoS Control of QoS data frames.
    pub fn qos_control(&self) -> Option<u16> {
        let off = if self.is_four_address() { 30 } else { 24 };
        self.is_qos_data().then(|| le16(self.buffer.as_ref(), off))
    }

    /// MAC header length: 24 for management and data, +6 for 4-address data, +2 for QoS data,
    /// +4 HT Control when the order flag is set on management or QoS data frames; control
    /// frames 10 (CTS, ACK, wrapper, extension) or 16; extension frames 10.
    pub fn header_len(&self) -> usize {
        let htc = if self.flags() & FLAG_ORDER != 0 {
            field::HT_CONTROL_LEN
        } else {
            0
        };
        match self.frame_type() {
            TYPE_MGMT => field::HEADER_3ADDR + htc,
            TYPE_DATA => {
                let mut len = field::HEADER_3ADDR;
                if self.is_four_address() {
                    len += 6;
                }
                if self.is_qos_data() {
                    len += field::QOS_LEN + htc;
                }
                len
            }
            TYPE_CTRL => match self.subtype() {
                subtype::CTS | subtype::ACK | subtype::CTRL_WRAPPER | subtype::CTRL_EXT => {
                    field::HEADER_CTRL_SHORT
                }
                _ => field::HEADER_CTRL_LONG,
            },
            _ => field::HEADER_CTRL_SHORT,
        }
    }

    /// Everything after the MAC header.
    pub fn body(&self) -> &[u8] {
        tail(self.buffer.as_ref(), self.header_len())
    }

    /// Fixed fields of a management body (empty when unknown or truncated).
    pub fn fixed_fields(&self) -> &[u8] {
        let n = self.mgmt_fixed_len().unwrap_or(0);
        let body = self.body();
        slice(body, 0, n.min(body.len()))
    }

    fn mgmt_fixed_len(&self) -> Option<usize> {
        if self.frame_type() != TYPE_MGMT {
            return None;
        }
        mgmt_fixed_len(self.subtype())
    }

    /// The information elements of a management frame, after its fixed fields.
    pub fn ies(&self) -> Result<ie::Iter<'_>> {
        let fixed = self.mgmt_fixed_len().ok_or(Error::malformed(
            "802.11 frame without information elements",
            0,
        ))?;
        let body = self.body();
        if body.len() < fixed {
            return Err(Error::truncated(
                "802.11 fixed fields",
                self.header_len(),
                fixed,
                body.len(),
            ));
        }
        Ok(ie::Iter::new(tail(body, fixed)))
    }
}

/// If `frame` was transmitted by a client (a non-AP station), its MAC and kind:
/// - probe, association and reassociation requests: addr2;
/// - authentication with addr2 != addr3 (the AP sends its own with addr2 == addr3 == BSSID;
///   comparing addresses instead of the transaction number also covers SAE, where both sides
///   send transactions 1 and 2);
/// - data, null, QoS data and QoS null with ToDS=1, FromDS=0: addr2.
///
/// Everything else (beacons, responses, FromDS or 4-address data, control frames) is `None`.
#[inline]
pub fn client_frame<T: AsRef<[u8]>>(frame: &Frame<T>) -> Option<(MacAddr, FrameKind)> {
    let kind = frame.kind();
    let client = match kind {
        FrameKind::ProbeRequest | FrameKind::AssocRequest | FrameKind::ReassocRequest => true,
        FrameKind::Authentication => frame.addr2() != frame.addr3(),
        FrameKind::Data | FrameKind::NullData | FrameKind::QosData | FrameKind::QosNull => {
            frame.flags() & (FLAG_TO_DS | FLAG_FROM_DS) == FLAG_TO_DS
        }
        FrameKind::Other => false,
    };
    client.then(|| (frame.addr2(), kind))
}

/// Fixed fields of the management frames [`Repr`] models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fixed {
    /// No fixed fields (probe request, data frames).
    #[default]
    None,
    /// Association request.
    AssocRequest {
        /// Capability information.
        capability: u16,
        /// Listen interval.
        listen_interval: u16,
    },
    /// Reassociation request.
    ReassocRequest {
        /// Capability information.
        capability: u16,
        /// Listen interval.
        listen_interval: u16,
        /// Current AP address.
        current_ap: MacAddr,
    },
    /// Authentication.
    Authentication {
        /// Algorithm (0 open, 1 shared key, 3 SAE).
        algorithm: u16,
        /// Transaction sequence number.
        transaction: u16,
        /// Status code.
        status: u16,
    },
}

impl Fixed {
    fn parse(kind: FrameKind, b: &[u8]) -> Fixed {
        match kind {
            FrameKind::AssocRequest => Fixed::AssocRequest {
                capability: le16(b, 0),
                listen_interval: le16(b, 2),
            },
            FrameKind::ReassocRequest => Fixed::ReassocRequest {
                capability: le16(b, 0),
                listen_interval: le16(b, 2),
                current_ap: MacAddr::from_slice(tail(b, 4)).unwrap_or_default(),
            },
            FrameKind::Authentication => Fixed::Authentication {
                algorithm: le16(b, 0),
                transaction: le16(b, 2),
                status: le16(b, 4),
            },
            _ => Fixed::None,
        }
    }

    /// The kind these fixed fields belong to (`None` for [`Fixed::None`]).
    fn kind(&self) -> Option<FrameKind> {
        match self {
            Fixed::None => None,
            Fixed::AssocRequest { .. } => Some(FrameKind::AssocRequest),
            Fixed::ReassocRequest { .. } => Some(FrameKind::ReassocRequest),
            Fixed::Authentication { .. } => Some(FrameKind::Authentication),
        }
    }

    /// Bytes on the air.
    pub fn len(&self) -> usize {
        self.kind().map_or(0, FrameKind::fixed_len)
    }

    /// No fixed fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn emit(&self, buf: &mut [u8]) {
        match *self {
            Fixed::None => {}
            Fixed::AssocRequest {
                capability,
                listen_interval,
            } => {
                put(buf, 0, &capability.to_le_bytes());
                put(buf, 2, &listen_interval.to_le_bytes());
            }
            Fixed::ReassocRequest {
                capability,
                listen_interval,
                current_ap,
            } => {
                put(buf, 0, &capability.to_le_bytes());
                put(buf, 2, &listen_interval.to_le_bytes());
                put(buf, 4, &current_ap.0);
            }
            Fixed::Authentication {
                algorithm,
                transaction,
                status,
            } => {
                put(buf, 0, &algorithm.to_le_bytes());
                put(buf, 2, &transaction.to_le_bytes());
                put(buf, 4, &status.to_le_bytes());
            }
        }
    }
}

/// A parsed client-side frame: the kinds of [`FrameKind`] except `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Kind (never `Other`).
    pub kind: FrameKind,
    /// FC byte 1 (`FLAG_*`).
    pub flags: u8,
    /// Duration/ID.
    pub duration: u16,
    /// Address 1.
    pub addr1: MacAddr,
    /// Address 2.
    pub addr2: MacAddr,
    /// Address 3.
    pub addr3: MacAddr,
    /// Address 4: `Some` exactly for data frames with ToDS and FromDS.
    pub addr4: Option<MacAddr>,
    /// Sequence number (0..=4095).
    pub seq: u16,
    /// Fragment number (0..=15).
    pub frag: u8,
    /// QoS Control: `Some` exactly for QoS kinds.
    pub qos_control: Option<u16>,
    /// Management fixed fields (must match `kind`).
    pub fixed: Fixed,
    /// Management frames: the raw IEs after the fixed fields (validated by `parse`).
    pub ies: &'a [u8],
    /// Data frames: the body after the MAC header.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked frame. `FrameKind::Other` is an error: those frames are read through
    /// the [`Frame`] view only. The HT Control field, if any, is not kept (emitted as zeros).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&'a T>) -> Result<Repr<'a>> {
        frame.check_len()?;
        let kind = frame.kind();
        if kind == FrameKind::Other {
            return Err(Error::malformed(
                "802.11 frame kind not modelled by Repr",
                0,
            ));
        }
        let header_len = frame.header_len();
        let body = tail(frame.buffer.as_ref(), header_len);
        let (fixed, ies, payload) = if frame.frame_type() == TYPE_MGMT {
            let n = kind.fixed_len();
            if body.len() < n {
                return Err(Error::truncated(
                    "802.11 fixed fields",
                    header_len,
                    n,
                    body.len(),
                ));
            }
            let ies = tail(body, n);
            ie::Iter::validate(ies)?;
            (Fixed::parse(kind, body), ies, &[][..])
        } else {
            (Fixed::None, &[][..], body)
        };
        Ok(Repr {
            kind,
            flags: frame.flags(),
            duration: frame.duration(),
            addr1: frame.addr1(),
            addr2: frame.addr2(),
            addr3: frame.addr3(),
            addr4: frame.addr4(),
            seq: frame.sequence_number(),
            frag: frame.fragment_number(),
            qos_control: frame.qos_control(),
            fixed,
            ies,
            payload,
        })
    }

    fn frame_control(&self) -> Result<[u8; 2]> {
        let (ty, st) = self.kind.type_subtype().ok_or(Error::malformed(
            "802.11 frame kind not modelled by Repr",
            0,
        ))?;
        Ok([st << 4 | ty << 2, self.flags])
    }

    fn header_len(&self) -> usize {
        let [fc0, fc1] = self.frame_control().unwrap_or([0, 0]);
        Frame::new_unchecked([fc0, fc1]).header_len()
    }

    /// Length of the emitted frame (no FCS).
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.fixed.len() + self.ies.len() + self.payload.len()
    }

    /// Writes the frame into `buf` and returns its length. Fails for `Other` or when `fixed`
    /// does not belong to `kind`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let fc = self.frame_control()?;
        if self.fixed.kind().unwrap_or(self.kind) != self.kind
            || (self.fixed == Fixed::None && self.kind.fixed_len() != 0)
        {
            return Err(Error::malformed(
                "802.11 fixed fields do not match kind",
                24,
            ));
        }
        let len = self.buffer_len();
        Error::check_room("802.11 frame", len, buf.len())?;
        let header_len = self.header_len();
        if let Some(h) = buf.get_mut(..header_len) {
            // Zeroes the HT Control field, if any.
            h.fill(0);
        }
        put(buf, field::FRAME_CONTROL, &fc);
        put(buf, field::DURATION, &self.duration.to_le_bytes());
        put(buf, field::ADDR1.start, &self.addr1.0);
        put(buf, field::ADDR2.start, &self.addr2.0);
        put(buf, field::ADDR3.start, &self.addr3.0);
        let seq_ctrl = (self.seq & 0x0fff) << 4 | u16::from(self.frag & 0xf);
        put(buf, field::SEQ_CTRL, &seq_ctrl.to_le_bytes());
        let view = Frame::new_unchecked(fc);
        let mut qos_at = field::HEADER_3ADDR;
        if view.is_four_address() {
            put(buf, field::ADDR4.start, &self.addr4.unwrap_or_default().0);
            qos_at = field::ADDR4.end;
        }
        if view.is_qos_data() {
            put(buf, qos_at, &self.qos_control.unwrap_or(0).to_le_bytes());
        }
        let mut pos = header_len;
        if let Some(b) = buf.get_mut(pos..) {
            self.fixed.emit(b);
        }
        pos += self.fixed.len();
        put(buf, pos, self.ies);
        pos += self.ies.len();
        put(buf, pos, self.payload);
        Ok(pos + self.payload.len())
    }
}

/// Emitter for probe requests from a list of `(id, data)` IEs (used by the simulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequestRepr<'a> {
    /// Transmitter (client) address: addr2.
    pub sa: MacAddr,
    /// Destination: addr1, usually broadcast.
    pub da: MacAddr,
    /// BSSID: addr3, usually broadcast (wildcard).
    pub bssid: MacAddr,
    /// FC byte 1 (`FLAG_RETRY`...).
    pub flags: u8,
    /// Sequence number (0..=4095).
    pub seq: u16,
    /// The information elements, in order.
    pub ies: &'a [(u8, &'a [u8])],
}

impl<'a> ProbeRequestRepr<'a> {
    /// A broadcast wildcard probe request from `sa`.
    pub const fn new(sa: MacAddr, seq: u16, ies: &'a [(u8, &'a [u8])]) -> Self {
        ProbeRequestRepr {
            sa,
            da: MacAddr::BROADCAST,
            bssid: MacAddr::BROADCAST,
            flags: 0,
            seq,
            ies,
        }
    }

    fn header(&self) -> Repr<'static> {
        Repr {
            kind: FrameKind::ProbeRequest,
            flags: self.flags,
            duration: 0,
            addr1: self.da,
            addr2: self.sa,
            addr3: self.bssid,
            addr4: None,
            seq: self.seq,
            frag: 0,
            qos_control: None,
            fixed: Fixed::None,
            ies: &[],
            payload: &[],
        }
    }

    /// Length of the emitted frame (no FCS).
    pub fn buffer_len(&self) -> usize {
        self.header().buffer_len() + ie::buffer_len(self.ies)
    }

    /// Writes the frame into `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        Error::check_room("probe request", self.buffer_len(), buf.len())?;
        let n = self.header().emit(buf)?;
        let ies = buf.get_mut(n..).unwrap_or(&mut []);
        Ok(n + ie::emit(self.ies, ies)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_type_subtype() {
        for &k in FrameKind::ALL {
            match k.type_subtype() {
                Some((t, s)) => assert_eq!(FrameKind::from_type_subtype(t, s), k),
                None => assert_eq!(k, FrameKind::Other),
            }
        }
    }

    #[test]
    fn header_lengths() {
        let len = |fc: [u8; 2]| Frame::new_unchecked(fc).header_len();
        assert_eq!(len([0x40, 0x00]), 24); // probe request
        assert_eq!(len([0x40, 0x80]), 28); // probe request +HTC
        assert_eq!(len([0x08, 0x01]), 24); // data ToDS
        assert_eq!(len([0x08, 0x83]), 30); // data WDS, order ignored without QoS
        assert_eq!(len([0x88, 0x01]), 26); // QoS data
        assert_eq!(len([0x88, 0x03]), 32); // QoS data WDS
        assert_eq!(len([0x88, 0x81]), 30); // QoS data +HTC
        assert_eq!(len([0xd4, 0x00]), 10); // ACK
        assert_eq!(len([0xb4, 0x00]), 16); // RTS
    }

    #[test]
    fn unchecked_short_never_panics() {
        let f = Frame::new_unchecked(&[0x88u8][..]);
        assert_eq!(f.addr2(), MacAddr::default());
        assert!(f.body().is_empty());
        assert!(f.check_len().is_err());
        assert!(client_frame(&f).is_none());
    }
}
