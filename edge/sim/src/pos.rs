//! POS receipts of the simulated store: who buys what, when and how they pay, and the ESC/POS
//! byte stream the till sends to its receipt printer (an Xprinter XP-58IIH in Chinese mode,
//! hardware profile [`POS_PROFILE`]), laid out by edge-wire's [`ReceiptBuilder`].
//!
//! [`plan`] draws everything from its own ChaCha stream (after the frames and the portal
//! logins, because purchases follow a visit's clean frames and print its login phone), so
//! adding receipts leaves every other output of a seed unchanged. [`write`] turns the plan into
//! [`POS_FILE`]; it draws nothing.
//!
//! On every day of the period, in day order:
//! - each visitor visit (a [`Role::Visitor`] presence with at least one clean frame) buys with
//!   probability [`SimParams::purchase_share`]: one receipt at a whole second drawn uniformly
//!   from the second half of the visit (first to last clean frame), at least 1 minute before
//!   its last clean frame (a visit too short for that buys nothing). If the visitor logged in
//!   at the portal, the receipt prints that phone with probability
//!   [`SimParams::member_phone_share`];
//! - walk-in shoppers the Wi-Fi never saw buy as a Poisson process of
//!   [`SimParams::walkin_purchases_per_hour`] over the opening hours; a third of them print a
//!   member phone that is nobody's (no visit logged in with it).
//!
//! A receipt has 1–6 distinct products of [`CATALOGUE`], 1–3 of each; members sometimes get a
//! discount off the total. The layout is the one of the profile's fixture
//! (`hardware-profiles/pos/fixtures/xprinter-xp-58iih-gb18030.txt`): 32 columns, CJK characters
//! two columns wide, items on two lines under the `品名` header, so that the profile's
//! `[extract]` rules find every field.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use edge_wire::escpos::{ctl, DecoderConfig, Encoding, ReceiptBuilder};
use edge_wire::MacAddr;
use rand::seq::index;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::params::SimParams;
use crate::plan::{Plan, Role, MIN, SEC};
use crate::portal::Portal;
use crate::run::Seen;
use crate::truth::{PosDayTruth, PosTruth, Purchase, PurchaseItem, VisitRef};

/// File name of the receipt printer capture.
pub const POS_FILE: &str = "pos-capture.bin";
/// Hardware profile of the simulated printer, as `config.toml` names it.
pub const POS_PROFILE: &str = "pos/xprinter-xp-58iih-gb18030";
/// Currency of every amount.
pub const POS_CURRENCY: &str = "CNY";

/// Printed columns of the 58 mm paper.
const COLUMNS: usize = 32;
/// A purchase is at least this long before the visit's last clean frame (µs).
const BUY_BEFORE_END_US: i64 = MIN;
/// Share of walk-in purchases that print a member phone.
const WALKIN_MEMBER_SHARE: f64 = 1.0 / 3.0;
/// Share of member receipts with a member discount.
const MEMBER_DISCOUNT_SHARE: f64 = 0.4;
/// The member discount, percent of the item total (whole 0.10 yuan, at least 0.10).
const MEMBER_DISCOUNT_PERCENT: i64 = 5;
/// Weights of 1, 2, … 6 item lines per receipt (convenience-store baskets are small).
const LINE_WEIGHTS: [f64; 6] = [0.35, 0.25, 0.17, 0.11, 0.07, 0.05];
/// Weights of quantity 1, 2, 3 per line.
const QTY_WEIGHTS: [f64; 3] = [0.7, 0.2, 0.1];
/// Payment methods as printed, with their shares (mainland convenience store, mid-2020s).
const PAYMENTS: [(&str, f64); 4] = [
    ("微信支付", 0.55),
    ("支付宝", 0.25),
    ("现金", 0.12),
    ("银联卡", 0.08),
];
/// Index of cash in [`PAYMENTS`]: opens the drawer, may get change.
const CASH: usize = 2;
/// Share of cash payers who hand over the exact amount.
const EXACT_CASH_SHARE: f64 = 0.25;
/// Banknotes a cash payer hands over (fen), smallest first.
const NOTES: [i64; 4] = [1000, 2000, 5000, 10000];
/// Cashier numbers of the store's staff.
const CASHIERS: [&str; 3] = ["0317", "0322", "0408"];
/// Till number: printed after `机号：` (two digits), and the first digit of every transaction id.
const TILL: u8 = 1;

/// Products of the store: name as printed, unit price in fen.
pub(crate) const CATALOGUE: [(&str, i64); 30] = [
    ("农夫山泉饮用天然水550ml", 200),
    ("可口可乐330ml", 300),
    ("康师傅冰红茶500ml", 350),
    ("元气森林白桃气泡水480ml", 550),
    ("东方树叶茉莉花茶500ml", 600),
    ("光明莫斯利安酸奶", 650),
    ("蒙牛纯牛奶250ml", 350),
    ("伊利安慕希原味酸奶", 750),
    ("维他柠檬茶250ml", 450),
    ("红牛维生素功能饮料250ml", 650),
    ("雀巢丝滑拿铁咖啡268ml", 700),
    ("康师傅红烧牛肉面", 450),
    ("统一老坛酸菜牛肉面", 450),
    ("白象汤好喝老母鸡汤面", 550),
    ("奥利奥夹心饼干", 990),
    ("乐事原味薯片70g", 850),
    ("旺旺雪饼84g", 690),
    ("卫龙大面筋106g", 500),
    ("德芙丝滑牛奶巧克力", 1290),
    ("士力架花生夹心巧克力", 550),
    ("绿箭薄荷口香糖", 450),
    ("茶叶蛋", 150),
    ("鲜肉大包", 350),
    ("关东煮萝卜", 200),
    ("金枪鱼饭团", 690),
    ("照烧鸡腿便当", 1590),
    ("双汇王中王火腿肠", 350),
    ("桃李醇熟切片面包", 590),
    ("维达抽纸3包装", 1290),
    ("晨光中性笔0.5mm", 300),
];

/// One purchase: everything its receipt prints.
#[derive(Debug, Clone)]
pub(crate) struct Sale {
    /// Business day (local).
    pub date: NaiveDate,
    /// Unix seconds of the sale.
    pub time_s: i64,
    /// Serial of the day, from 1, in time order.
    pub serial: u32,
    /// (index into [`CATALOGUE`], quantity), distinct products.
    pub lines: Vec<(usize, u32)>,
    /// Member discount, fen (0: none).
    pub discount_minor: i64,
    /// Index into [`PAYMENTS`].
    pub payment: usize,
    /// Amount handed over, fen (the total unless paid cash with a note).
    pub paid_minor: i64,
    /// Member phone, 11 national digits.
    pub member: Option<String>,
    /// Member points before this purchase.
    pub points_before: u32,
    /// Index into [`CASHIERS`].
    pub cashier: usize,
    /// The visit (its first MAC and first clean frame, µs); `None` for a walk-in.
    pub visit: Option<([u8; 6], i64)>,
}

impl Sale {
    /// Sum of the item lines, fen.
    fn subtotal_minor(&self) -> i64 {
        self.lines
            .iter()
            .map(|&(p, q)| CATALOGUE[p].1 * i64::from(q))
            .sum()
    }

    /// Amount due, fen.
    fn total_minor(&self) -> i64 {
        self.subtotal_minor() - self.discount_minor
    }

    /// Transaction id: till digit, business day, serial.
    pub(crate) fn txn_id(&self) -> String {
        format!("{TILL}{}{:04}", self.date.format("%Y%m%d"), self.serial)
    }
}

/// Every purchase of the period and the period's days.
#[derive(Debug, Clone)]
pub(crate) struct Pos {
    /// In time order (the order of the capture).
    pub sales: Vec<Sale>,
    /// Business days of the period, oldest first.
    pub days: Vec<NaiveDate>,
}

/// The decoder configuration of the profile's `[decode]` table: GB18030 text, in double-byte
/// (GB18030) mode from power-on and after `ESC @`, code table 0 = CP437.
pub(crate) fn decoder_config() -> DecoderConfig {
    DecoderConfig {
        encoding: Encoding::Gb18030,
        code_tables: vec![(0, Encoding::Cp437)],
        double_byte: Some(Encoding::Gb18030),
        starts_double_byte: true,
        ..DecoderConfig::new(Encoding::Gb18030)
    }
}

/// An index drawn with the given weights (summing to about 1; the last absorbs rounding).
fn weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let u: f64 = rng.gen();
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

/// Draws basket, payment and points of one sale (serial assigned later).
fn draw_sale(
    rng: &mut ChaCha8Rng,
    date: NaiveDate,
    time_s: i64,
    member: Option<String>,
    visit: Option<([u8; 6], i64)>,
) -> Sale {
    let n = weighted(rng, &LINE_WEIGHTS) + 1;
    let lines: Vec<(usize, u32)> = index::sample(rng, CATALOGUE.len(), n)
        .into_iter()
        .map(|p| (p, 1 + weighted(rng, &QTY_WEIGHTS) as u32))
        .collect();
    let subtotal: i64 = lines
        .iter()
        .map(|&(p, q)| CATALOGUE[p].1 * i64::from(q))
        .sum();
    let discount_minor = if member.is_some() && rng.gen::<f64>() < MEMBER_DISCOUNT_SHARE {
        // Whole 0.10 yuan, at least 0.10; every product costs more than that, so the total
        // stays positive.
        (subtotal * MEMBER_DISCOUNT_PERCENT / 100 / 10 * 10).max(10)
    } else {
        0
    };
    let total = subtotal - discount_minor;
    let weights = PAYMENTS.map(|(_, w)| w);
    let payment = weighted(rng, &weights);
    let paid_minor = if payment == CASH && rng.gen::<f64>() >= EXACT_CASH_SHARE {
        // The smallest note that covers the total, or enough 100-yuan notes.
        NOTES
            .iter()
            .copied()
            .find(|&n| n >= total)
            .unwrap_or_else(|| (total + 9_999) / 10_000 * 10_000)
    } else {
        total
    };
    Sale {
        date,
        time_s,
        serial: 0,
        lines,
        discount_minor,
        payment,
        paid_minor,
        member,
        points_before: rng.gen_range(0..3000),
        cashier: crate::draw_index(rng, CASHIERS.len()),
        visit,
    }
}

/// Plans every purchase of the period (see the module doc). `params` must be clamped (as
/// [`crate::generate`] does); shares outside 0..=1 act as 0 or 1.
pub(crate) fn plan(
    plan: &Plan,
    seen: &Seen,
    portal: &Portal,
    params: &SimParams,
    rng: &mut ChaCha8Rng,
) -> Pos {
    // Walk-in member numbers must be nobody's: no visitor logged in with them.
    let mut phones: HashSet<String> = portal.logins.iter().map(|l| l.digits.clone()).collect();
    let mut sales = Vec::new();
    let mut days = Vec::new();
    let all = plan.days.iter().zip(&seen.days).enumerate();
    for (d, (day, day_seen)) in all.filter(|(_, (day, _))| day.period) {
        days.push(day.date);
        let mut today = Vec::new();
        for (i, p) in day.presences.iter().enumerate() {
            let (first, last) = (day_seen.first_us[i], day_seen.last_us[i]);
            if p.role != Role::Visitor || first > last {
                continue;
            }
            // Decide first: whether a visit buys depends on the share alone; one too short for
            // the purchase window then buys nothing.
            if rng.gen::<f64>() >= params.purchase_share {
                continue;
            }
            let lo_s = (first + (last - first) / 2 + SEC - 1).div_euclid(SEC);
            let hi_s = (last - BUY_BEFORE_END_US).div_euclid(SEC);
            if lo_s > hi_s {
                continue;
            }
            let time_s = rng.gen_range(lo_s..=hi_s);
            let member = portal
                .login_of(d, i)
                .filter(|_| rng.gen::<f64>() < params.member_phone_share)
                .map(|l| l.digits.clone());
            // The truth visit's MAC is the first one it sent clean frames from.
            let mac = if !p.tracks_macs() {
                p.mac
            } else {
                day_seen
                    .macs
                    .get(i)
                    .and_then(|m| m.first())
                    .copied()
                    .unwrap_or(p.mac)
            };
            today.push(draw_sale(rng, day.date, time_s, member, Some((mac, first))));
        }
        let rate = params.walkin_purchases_per_hour;
        if rate > 0.0 {
            let (open, close) = params.open_close_us(day.date);
            let (open_s, close_s) = (open as f64 / SEC as f64, close as f64 / SEC as f64);
            let mut t = open_s;
            loop {
                // Exponential gaps: 1 - u is in (0, 1], so the gap is finite and >= 0.
                let u: f64 = rng.gen();
                t += -(1.0 - u).ln() * 3600.0 / rate;
                if t >= close_s {
                    break;
                }
                let member = (rng.gen::<f64>() < WALKIN_MEMBER_SHARE)
                    .then(|| crate::portal::draw_phone(rng, &mut phones));
                today.push(draw_sale(rng, day.date, t.floor() as i64, member, None));
            }
        }
        // Serials in time order (stable: visits before walk-ins within a second).
        today.sort_by_key(|s| s.time_s);
        for (k, s) in today.iter_mut().enumerate() {
            s.serial = k as u32 + 1;
        }
        sales.extend(today);
    }
    // Days are consecutive, but opening hours may run past midnight into the next day's.
    sales.sort_by_key(|s| s.time_s);
    Pos { sales, days }
}

/// Printed columns of `text`: ASCII takes one, everything else (CJK ideographs, full-width
/// punctuation — all this receipt prints) two.
pub(crate) fn width(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// `left` and `right` on one line, at least one space apart.
fn lr(left: &str, right: &str) -> String {
    let gap = COLUMNS.saturating_sub(width(left) + width(right)).max(1);
    format!("{left}{}{right}", " ".repeat(gap))
}

/// A line of `(text, columns, right-aligned)` cells; the last takes what is left. Trailing
/// blanks are trimmed (as the printer drops them).
fn cells(spec: &[(&str, usize, bool)]) -> String {
    let mut out = String::new();
    for (i, &(text, w, right)) in spec.iter().enumerate() {
        let w = if i + 1 == spec.len() {
            COLUMNS.saturating_sub(width(&out))
        } else {
            w
        };
        let pad = " ".repeat(w.saturating_sub(width(text)));
        if right {
            out.push_str(&pad);
            out.push_str(text);
        } else {
            out.push_str(text);
            out.push_str(&pad);
        }
    }
    out.trim_end().to_string()
}

/// Fen as yuan, `-1.90`.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.abs();
    format!("{sign}{}.{:02}", fen / 100, fen % 100)
}

/// Store-local `YYYY-MM-DD HH:MM:SS` of `unix_s`.
fn local_time(tz: Tz, unix_s: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix_s, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The e-fapiao link of the QR code.
fn fapiao_url(sale: &Sale) -> String {
    format!(
        "https://fapiao.example.com/kp?shop=SH0317&no={}&amt={}&t={}",
        sale.txn_id(),
        yuan(sale.total_minor()),
        sale.date.format("%Y%m%d")
    )
}

/// The 32-column header of the item section.
fn items_header() -> String {
    cells(&[
        ("品名", 14, false),
        ("数量", 4, true),
        ("单价", 7, true),
        ("金额", 0, true),
    ])
}

/// Appends one receipt, as the till sends it: `ESC @`, Chinese mode, the text, the e-fapiao
/// QR code, the CODE128 barcode of the id, a drawer kick for cash, feed and cut.
fn render(b: &mut ReceiptBuilder, sale: &Sale, tz: Tz) -> edge_wire::Result<()> {
    let rule = "-".repeat(COLUMNS);
    let id = sale.txn_id();
    let (subtotal, total) = (sale.subtotal_minor(), sale.total_minor());
    // The printer powers on in Chinese mode; the till sends FS & anyway (as python-escpos does).
    b.init().double_byte(true);
    b.align(1).size(2, 2);
    b.line("鲜丰便利")?;
    b.size(1, 1);
    b.line("漕溪北路店")?;
    b.align(0);
    b.line("上海市徐汇区漕溪北路88号")?;
    b.line("电话：021-6438 2210")?;
    b.line("税号：91310104MA1FL3XK2Q")?;
    b.line(&rule)?;
    b.line(&format!("流水号：{id}"))?;
    b.line(&lr(
        &format!("收银员：{}", CASHIERS[sale.cashier]),
        &format!("机号：{TILL:02}"),
    ))?;
    b.line(&format!("交易时间：{}", local_time(tz, sale.time_s)))?;
    b.line(&rule)?;
    b.line(&items_header())?;
    let mut count = 0;
    for &(p, qty) in &sale.lines {
        let (name, unit) = CATALOGUE[p];
        b.line(name)?;
        b.line(&cells(&[
            ("", 14, false),
            (&qty.to_string(), 4, true),
            (&yuan(unit), 7, true),
            (&yuan(unit * i64::from(qty)), 0, true),
        ]))?;
        count += qty;
    }
    b.line(&rule)?;
    b.line(&format!("商品数量：{count}"))?;
    b.line(&format!("原价合计：{}", yuan(subtotal)))?;
    if sale.discount_minor != 0 {
        b.line(&format!("会员优惠：{}", yuan(-sale.discount_minor)))?;
    }
    b.bold(true).size(1, 2);
    b.line(&format!("应付金额：{}", yuan(total)))?;
    b.bold(false).size(1, 1);
    b.line(&format!(
        "{}：{}",
        PAYMENTS[sale.payment].0,
        yuan(sale.paid_minor)
    ))?;
    b.line(&format!("找零：{}", yuan(sale.paid_minor - total)))?;
    b.line(&rule)?;
    if let Some(phone) = &sale.member {
        let points = total / 100;
        b.line(&format!("会员手机：{phone}"))?;
        b.line(&lr(
            &format!("本次积分：{points}"),
            &format!("累计积分：{}", i64::from(sale.points_before) + points),
        ))?;
        b.line(&rule)?;
    }
    b.align(1);
    b.qr(&fapiao_url(sale))?;
    b.line("扫码开具电子发票")?;
    // Barcode setup: height 64 dots, module width 2, HRI below in font A.
    b.raw(&[
        ctl::GS,
        b'h',
        64,
        ctl::GS,
        b'w',
        2,
        ctl::GS,
        b'H',
        2,
        ctl::GS,
        b'f',
        0,
    ]);
    b.barcode(73, &format!("{{B{id}"))?;
    b.line("谢谢惠顾，欢迎再次光临！")?;
    b.line("退换货请凭此小票（7日内）")?;
    b.align(0);
    if sale.payment == CASH {
        b.drawer_kick();
    }
    b.feed(6).cut(false);
    Ok(())
}

/// Writes [`POS_FILE`] into `dir`; returns its truth.
pub(crate) fn write(dir: &Path, pos: &Pos, tz: Tz) -> io::Result<PosTruth> {
    let mut b = ReceiptBuilder::for_config(&decoder_config());
    for sale in &pos.sales {
        // Catalogue and layout text is all GB18030, so this fails only on a bug.
        render(&mut b, sale, tz).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    let mut w = BufWriter::new(File::create(dir.join(POS_FILE))?);
    w.write_all(b.as_bytes())?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;

    let day_name = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let purchases: Vec<Purchase> = pos
        .sales
        .iter()
        .map(|s| Purchase {
            txn_id: s.txn_id(),
            day: day_name(s.date),
            time: s.time_s as f64,
            total_minor: s.total_minor(),
            items: s
                .lines
                .iter()
                .map(|&(p, qty)| PurchaseItem {
                    name: CATALOGUE[p].0.to_string(),
                    qty,
                    unit_minor: CATALOGUE[p].1,
                    amount_minor: CATALOGUE[p].1 * i64::from(qty),
                })
                .collect(),
            payment: PAYMENTS[s.payment].0.to_string(),
            member_phone: s.member.as_ref().map(|d| format!("+86{d}")),
            // Same expression as the truth visit's `start`, so the two compare equal.
            visit: s.visit.map(|(mac, first_us)| VisitRef {
                mac: MacAddr(mac).to_string(),
                start: first_us as f64 / SEC as f64,
            }),
        })
        .collect();
    let days = pos
        .days
        .iter()
        .map(|&d| {
            let of_day = pos.sales.iter().filter(|s| s.date == d);
            PosDayTruth {
                day: day_name(d),
                receipts: of_day.clone().count() as u32,
                sales_minor: of_day.map(Sale::total_minor).sum(),
            }
        })
        .collect();
    Ok(PosTruth {
        path: POS_FILE.to_string(),
        currency: POS_CURRENCY.to_string(),
        receipts: purchases.len() as u32,
        sales_minor: purchases.iter().map(|p| p.total_minor).sum(),
        days,
        purchases,
    })
}
