//! A generator of realistic rapid-test reports for one market's day: the products, test
//! items, methods, limits, stall codes, lots and times a market lab in Taiyuan would record
//! (see shared DOMAIN.md). The devnet loads a day with it and tests use it as fixtures.
//!
//! Output is a pure function of its arguments (a seeded `StdRng`, no clock, no OS entropy), so
//! two runs with one seed give the same reports. It never invents personal data: stalls and
//! testers appear only as codes. Every report it returns passes
//! `huren_proto::validate::report` and uses only categories of `huren_proto::rules::defaults`.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use huren_proto::pb::{self, Quantity, ReportIssued, TestItem, TestResult};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Sampling starts this long after the start of the market day (04:00 for a CST midnight).
pub const SAMPLING_STARTS_AFTER_MS: i64 = 4 * HOUR_MS;
/// Sampling goes on this long (until 12:00 for a CST midnight).
pub const SAMPLING_SPAN_MS: i64 = 8 * HOUR_MS;
/// A test follows sampling by at least this much.
pub const MIN_TEST_DELAY_MS: i64 = 10 * MINUTE_MS;
/// A test follows sampling by at most this much.
pub const MAX_TEST_DELAY_MS: i64 = 40 * MINUTE_MS;
/// Every time in a generated day is before `day_start_ms` plus this.
pub const DAY_SPAN_MS: i64 = SAMPLING_STARTS_AFTER_MS + SAMPLING_SPAN_MS + MAX_TEST_DELAY_MS;

/// What one test item is and how it is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemTemplate {
    /// Item code, as the rules name it.
    pub code: &'static str,
    /// Name shown to people.
    pub name: &'static str,
    /// Method standard or technique.
    pub method: &'static str,
    /// Unit of value and limit; empty for a qualitative test.
    pub unit: &'static str,
    /// Limit; empty for a qualitative test.
    pub limit: &'static str,
    /// How a measured value is judged against the limit.
    pub judge: Judge,
}

/// How a value becomes a result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judge {
    /// Positive when the value is at or above the limit (enzyme inhibition rate, GB/T 5009.199).
    AtOrAbove,
    /// Positive when the value exceeds the limit (a maximum level, as in GB 2716 or GB 2757).
    Above,
    /// A strip read by eye: no value, positive or negative.
    Qualitative,
}

/// Test items the generator uses, with the methods and limits a market lab applies.
pub const ITEMS: [ItemTemplate; 9] = [
    ItemTemplate {
        code: "op-carbamate",
        name: "有机磷和氨基甲酸酯类农药残留",
        method: "GB/T 5009.199-2003",
        unit: "%",
        limit: "50",
        judge: Judge::AtOrAbove,
    },
    ItemTemplate {
        code: "clenbuterol",
        name: "盐酸克伦特罗",
        method: "胶体金免疫层析法",
        unit: "",
        limit: "",
        judge: Judge::Qualitative,
    },
    ItemTemplate {
        code: "ractopamine",
        name: "莱克多巴胺",
        method: "胶体金免疫层析法",
        unit: "",
        limit: "",
        judge: Judge::Qualitative,
    },
    ItemTemplate {
        code: "salbutamol",
        name: "沙丁胺醇",
        method: "胶体金免疫层析法",
        unit: "",
        limit: "",
        judge: Judge::Qualitative,
    },
    ItemTemplate {
        code: "acid-value",
        name: "酸价",
        method: "GB 5009.229-2016",
        unit: "mg/g",
        limit: "3",
        judge: Judge::Above,
    },
    ItemTemplate {
        code: "peroxide-value",
        name: "过氧化值",
        method: "GB 5009.227-2016",
        unit: "g/100g",
        limit: "0.25",
        judge: Judge::Above,
    },
    ItemTemplate {
        code: "methanol",
        name: "甲醇",
        method: "GB 5009.266-2016",
        unit: "g/L",
        limit: "0.6",
        judge: Judge::Above,
    },
    ItemTemplate {
        code: "4-cpa",
        name: "4-氯苯氧乙酸钠",
        method: "胶体金免疫层析法",
        unit: "",
        limit: "",
        judge: Judge::Qualitative,
    },
    ItemTemplate {
        code: "6-ba",
        name: "6-苄基腺嘌呤",
        method: "胶体金免疫层析法",
        unit: "",
        limit: "",
        judge: Judge::Qualitative,
    },
];

/// The template of a known item code.
pub fn item_template(code: &str) -> Option<&'static ItemTemplate> {
    ITEMS.iter().find(|t| t.code == code)
}

/// A product on the market floor.
struct Product {
    name: &'static str,
    category: &'static str,
    origins: &'static [&'static str],
    /// Lot size in whole units: (unit, smallest, largest, step).
    lots: &'static [(&'static str, u32, u32, u32)],
}

const PRODUCTS: &[Product] = &[
    Product {
        name: "小白菜",
        category: "leafy_vegetable",
        origins: &["山西太原清徐", "山西晋中太谷", "河北张家口"],
        lots: &[("kg", 50, 400, 5), ("jin", 100, 800, 10)],
    },
    Product {
        name: "菠菜",
        category: "leafy_vegetable",
        origins: &["山西太原小店", "河北张家口", "山东寿光"],
        lots: &[("kg", 50, 300, 5), ("jin", 100, 600, 10)],
    },
    Product {
        name: "油菜",
        category: "leafy_vegetable",
        origins: &["山西晋中榆次", "山西太原清徐"],
        lots: &[("kg", 50, 300, 5), ("jin", 100, 600, 10)],
    },
    Product {
        name: "生菜",
        category: "leafy_vegetable",
        origins: &["河北张家口", "山东寿光"],
        lots: &[("kg", 40, 250, 5)],
    },
    Product {
        name: "芹菜",
        category: "leafy_vegetable",
        origins: &["山西太原清徐", "山东寿光"],
        lots: &[("kg", 80, 600, 10), ("jin", 150, 1000, 10)],
    },
    Product {
        name: "菜豆",
        category: "vegetable",
        origins: &["山东寿光", "云南元谋", "海南三亚"],
        lots: &[("kg", 100, 1200, 10), ("jin", 200, 2000, 20)],
    },
    Product {
        name: "豇豆",
        category: "vegetable",
        origins: &["海南三亚", "山东寿光"],
        lots: &[("kg", 100, 800, 10)],
    },
    Product {
        name: "黄瓜",
        category: "vegetable",
        origins: &["山东寿光", "山西太原清徐"],
        lots: &[("kg", 200, 1500, 10)],
    },
    Product {
        name: "西红柿",
        category: "vegetable",
        origins: &["山东寿光", "山西晋中太谷"],
        lots: &[("kg", 200, 2000, 10)],
    },
    Product {
        name: "茄子",
        category: "vegetable",
        origins: &["山东寿光", "河北邯郸"],
        lots: &[("kg", 150, 1200, 10)],
    },
    Product {
        name: "青椒",
        category: "vegetable",
        origins: &["山东寿光", "海南三亚"],
        lots: &[("kg", 100, 1000, 10)],
    },
    Product {
        name: "韭菜",
        category: "vegetable",
        origins: &["山西太原小店", "河北保定"],
        lots: &[("kg", 50, 300, 5), ("jin", 100, 600, 10)],
    },
    Product {
        name: "冬枣",
        category: "fruit",
        origins: &["陕西大荔", "山东沾化", "山西运城临猗"],
        lots: &[("kg", 100, 1500, 10), ("jin", 200, 3000, 20)],
    },
    Product {
        name: "苹果",
        category: "fruit",
        origins: &["山西临汾吉县", "陕西洛川"],
        lots: &[("kg", 300, 3000, 50), ("piece", 20, 200, 5)],
    },
    Product {
        name: "玉露香梨",
        category: "fruit",
        origins: &["山西临汾隰县"],
        lots: &[("kg", 200, 2000, 50), ("piece", 20, 150, 5)],
    },
    Product {
        name: "葡萄",
        category: "fruit",
        origins: &["山西太原清徐", "新疆吐鲁番"],
        lots: &[("kg", 100, 1000, 10)],
    },
    Product {
        name: "猪肉",
        category: "meat",
        origins: &["山西晋中", "山西忻州定襄"],
        lots: &[("kg", 80, 900, 1)],
    },
    Product {
        name: "牛肉",
        category: "meat",
        origins: &["内蒙古锡林郭勒", "山西朔州"],
        lots: &[("kg", 50, 600, 1)],
    },
    Product {
        name: "羊肉",
        category: "meat",
        origins: &["内蒙古锡林郭勒", "山西朔州右玉"],
        lots: &[("kg", 30, 400, 1)],
    },
    Product {
        name: "散装大豆油",
        category: "edible_oil",
        origins: &["黑龙江哈尔滨"],
        lots: &[("kg", 180, 1800, 180)],
    },
    Product {
        name: "胡麻油",
        category: "edible_oil",
        origins: &["山西大同", "内蒙古乌兰察布"],
        lots: &[("kg", 100, 800, 20), ("piece", 10, 100, 5)],
    },
    Product {
        name: "散装花生油",
        category: "edible_oil",
        origins: &["山东临沂"],
        lots: &[("kg", 180, 900, 180)],
    },
    Product {
        name: "散装高粱白酒",
        category: "liquor",
        origins: &["山西吕梁汾阳", "山西晋中祁县"],
        lots: &[("kg", 50, 500, 25)],
    },
    Product {
        name: "绿豆芽",
        category: "bean_sprout",
        origins: &["山西太原小店", "山西太原晋源"],
        lots: &[("kg", 50, 300, 5), ("jin", 100, 600, 10)],
    },
    Product {
        name: "黄豆芽",
        category: "bean_sprout",
        origins: &["山西太原小店"],
        lots: &[("kg", 50, 250, 5)],
    },
];

/// How often each category is sampled, out of 100: mostly vegetables, as on a real floor.
const CATEGORY_WEIGHTS: [(&str, u32); 7] = [
    ("leafy_vegetable", 30),
    ("vegetable", 28),
    ("fruit", 15),
    ("meat", 13),
    ("bean_sprout", 6),
    ("edible_oil", 5),
    ("liquor", 3),
];

/// The short code of a market used in stall, lot, bag and tester codes, e.g. "SX" for shanxi.
pub fn market_code(market: &str) -> String {
    match market {
        "shanxi" => "SX".into(),
        "jiuzhou" => "JZ".into(),
        "tunhui" => "TH".into(),
        "zhangzitou" => "ZZT".into(),
        other => {
            // Two leading letters and any trailing digits: "market5" is "MA5", "market6" "MA6".
            let letters: String = other
                .chars()
                .filter(char::is_ascii_alphabetic)
                .take(2)
                .collect();
            let digits: String = other
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let code = format!("{letters}{digits}").to_ascii_uppercase();
            if code.is_empty() {
                "MK".into()
            } else {
                code
            }
        }
    }
}

/// FNV-1a, so that the market's name moves the seed the same way on every platform.
fn mix(seed: u64, market: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in market.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^ seed.rotate_left(17)
}

/// A stall: its code and the category it sells.
struct Stall {
    code: String,
    category: &'static str,
}

fn stalls(rng: &mut StdRng, prefix: &str) -> Vec<Stall> {
    // Zones by trade, as wholesale floors are laid out; numbers are unique within a zone.
    let zones: [(char, &str); 8] = [
        ('A', "leafy_vegetable"),
        ('B', "vegetable"),
        ('C', "vegetable"),
        ('D', "fruit"),
        ('E', "meat"),
        ('F', "bean_sprout"),
        ('G', "edible_oil"),
        ('H', "liquor"),
    ];
    let mut all = Vec::new();
    for (zone, category) in zones {
        let mut numbers: Vec<u32> = (1..=180).collect();
        numbers.shuffle(rng);
        let how_many = match category {
            "edible_oil" | "liquor" | "bean_sprout" => 4,
            "meat" => 10,
            _ => 18,
        };
        for n in numbers.into_iter().take(how_many) {
            all.push(Stall {
                code: format!("{prefix}-{zone}{n:03}"),
                category,
            });
        }
    }
    all
}

fn pick_category(rng: &mut StdRng) -> &'static str {
    let total: u32 = CATEGORY_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (category, weight) in CATEGORY_WEIGHTS {
        if roll < weight {
            return category;
        }
        roll -= weight;
    }
    CATEGORY_WEIGHTS[0].0
}

fn items_for(rng: &mut StdRng, category: &str) -> Vec<&'static ItemTemplate> {
    let t = |code: &str| item_template(code).expect("every code used here is in ITEMS");
    match category {
        "meat" if rng.gen_bool(0.4) => vec![t("clenbuterol"), t("ractopamine"), t("salbutamol")],
        "meat" => vec![t("clenbuterol")],
        "edible_oil" => vec![t("acid-value"), t("peroxide-value")],
        "liquor" => vec![t("methanol")],
        "bean_sprout" => vec![t("4-cpa"), t("6-ba")],
        _ => vec![t("op-carbamate")],
    }
}

/// A measured value on the passing or failing side of the template's limit.
fn measure(rng: &mut StdRng, template: &ItemTemplate, positive: bool) -> String {
    match (template.code, positive) {
        ("op-carbamate", false) => {
            // Most samples inhibit little; a few come near the line.
            let tenths = if rng.gen_bool(0.9) {
                rng.gen_range(0..=300)
            } else {
                rng.gen_range(300..=490)
            };
            format!("{}.{}", tenths / 10, tenths % 10)
        }
        ("op-carbamate", true) => {
            let tenths = rng.gen_range(500..=900);
            format!("{}.{}", tenths / 10, tenths % 10)
        }
        ("acid-value", false) => hundredths(rng.gen_range(10..=180)),
        ("acid-value", true) => hundredths(rng.gen_range(320..=550)),
        ("peroxide-value", false) => thousandths(rng.gen_range(20..=150)),
        ("peroxide-value", true) => thousandths(rng.gen_range(270..=400)),
        ("methanol", false) => hundredths(rng.gen_range(5..=40)),
        ("methanol", true) => hundredths(rng.gen_range(65..=120)),
        _ => String::new(),
    }
}

fn hundredths(n: u32) -> String {
    format!("{}.{:02}", n / 100, n % 100)
}

fn thousandths(n: u32) -> String {
    format!("{}.{:03}", n / 1000, n % 1000)
}

fn item(rng: &mut StdRng, template: &ItemTemplate, positive: bool) -> TestItem {
    let result = if positive {
        TestResult::Positive
    } else {
        TestResult::Negative
    };
    TestItem {
        code: template.code.into(),
        name: template.name.into(),
        method: template.method.into(),
        value: match template.judge {
            Judge::Qualitative => String::new(),
            _ => measure(rng, template, positive),
        },
        unit: template.unit.into(),
        limit: template.limit.into(),
        result: result as i32,
    }
}

fn lot_quantity(rng: &mut StdRng, product: &Product) -> Quantity {
    let (unit, low, high, step) = product.lots[rng.gen_range(0..product.lots.len())];
    let whole = low + step * rng.gen_range(0..=(high - low) / step);
    // Meat is weighed on a scale that reads tenths.
    let amount = if product.category == "meat" {
        format!("{whole}.{}", rng.gen_range(0..10))
    } else {
        whole.to_string()
    };
    Quantity {
        amount,
        unit: unit.into(),
    }
}

/// `YYYYMMDD` of an instant in China Standard Time.
fn cst_date(ms: i64) -> String {
    huren_proto::time::cst(ms)[..10].replace('-', "")
}

/// A market day of `count` rapid-test reports at `market`, in test-time order.
///
/// Sampling happens between `day_start_ms` + 4 h and + 12 h (04:00–12:00 when `day_start_ms`
/// is a CST midnight), each test 10 to 40 minutes after its sampling, all on whole seconds
/// (`day_start_ms` is first rounded down to a second);
/// so every time is in `[day_start_ms, day_start_ms + DAY_SPAN_MS)`. A caller that issues
/// the reports to a node must pick a `day_start_ms` far enough in the past for the node to
/// accept the times. Between 2 % and 4 % of the reports are positive (at least one when
/// `count` is 25 or more), each with one positive item.
pub fn day(market: &str, seed: u64, count: usize, day_start_ms: i64) -> Vec<ReportIssued> {
    // Lab clocks record whole seconds.
    let day_start_ms = day_start_ms.div_euclid(1000) * 1000;
    let mut rng = StdRng::seed_from_u64(mix(seed, market));
    let prefix = market_code(market);
    let stalls = stalls(&mut rng, &prefix);
    let testers: Vec<String> = (1..=6).map(|n| format!("{prefix}-QC{n:02}")).collect();

    // Which reports are positive is fixed up front, so the share holds for small days too.
    let share = rng.gen_range(0.02..=0.04);
    let mut positives = (count as f64 * share).round() as usize;
    if count >= 25 {
        positives = positives.max(1);
    }
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut rng);
    let positive: std::collections::HashSet<usize> = order.into_iter().take(positives).collect();

    let mut reports = Vec::with_capacity(count);
    for n in 0..count {
        let category = pick_category(&mut rng);
        let choices: Vec<&Product> = PRODUCTS.iter().filter(|p| p.category == category).collect();
        let product = choices[rng.gen_range(0..choices.len())];
        let stall_choices: Vec<&Stall> = stalls.iter().filter(|s| s.category == category).collect();
        let stall = stall_choices[rng.gen_range(0..stall_choices.len())];

        let templates = items_for(&mut rng, category);
        let failing = positive
            .contains(&n)
            .then(|| rng.gen_range(0..templates.len()));
        let items: Vec<TestItem> = templates
            .iter()
            .enumerate()
            .map(|(i, t)| item(&mut rng, t, failing == Some(i)))
            .collect();

        let seconds = rng.gen_range(0..SAMPLING_SPAN_MS / 1000);
        let sampled_at_ms = day_start_ms + SAMPLING_STARTS_AFTER_MS + seconds * 1000;
        let delay = rng.gen_range(MIN_TEST_DELAY_MS / 1000..=MAX_TEST_DELAY_MS / 1000 - 1);
        let tested_at_ms = sampled_at_ms + delay * 1000;

        let result = huren_proto::validate::overall_result(&items);
        reports.push(ReportIssued {
            stall_code: stall.code.clone(),
            product: product.name.into(),
            category: category.into(),
            origin: product.origins[rng.gen_range(0..product.origins.len())].into(),
            lot_id: String::new(),
            quantity: Some(lot_quantity(&mut rng, product)),
            bag_code: String::new(),
            sampled_at_ms,
            tested_at_ms,
            tester: testers[rng.gen_range(0..testers.len())].clone(),
            items,
            result: result as i32,
        });
    }

    // Lots and sample bags are numbered in the order the lab worked through them, within a
    // batch named by the seed, so days drawn with different seeds never share a bag or lot.
    let batch = seed;
    reports.sort_by_key(|r| (r.tested_at_ms, r.sampled_at_ms));
    let date = cst_date(day_start_ms + SAMPLING_STARTS_AFTER_MS);
    for (n, report) in reports.iter_mut().enumerate() {
        report.lot_id = format!("L-{prefix}-{date}-{batch}-{:04}", n + 1);
        report.bag_code = format!("BAG-{prefix}-{date}-{batch}-{:04}", n + 1);
    }
    reports
}

/// A realistic amount for another market to take in from a report's lot: 10 % to 60 % of it,
/// in whole units of the report's own unit (at least one). Deterministic given `seed`.
///
/// # Panics
/// Never for a report that passes validation; a report without a valid quantity gets one
/// unit of "kg".
pub fn draw(report: &ReportIssued, seed: u64) -> Quantity {
    let mut rng = StdRng::seed_from_u64(seed);
    let fallback = Quantity {
        amount: "1".into(),
        unit: "kg".into(),
    };
    let Some(lot) = report.quantity.as_ref() else {
        return fallback;
    };
    let (Ok(amount), Some(unit)) = (
        huren_proto::quantity::parse(lot),
        huren_proto::quantity::unit(&lot.unit),
    ) else {
        return fallback;
    };
    let whole_units = amount.base / unit.base_per_unit;
    let percent = rng.gen_range(10..=60);
    let drawn = (whole_units * percent / 100).max(1);
    Quantity {
        amount: drawn.to_string(),
        unit: unit.name.into(),
    }
}

/// A convenience for tests and the devnet: the TestItem of a known code with a result,
/// filled from [`ITEMS`] (value empty).
pub fn template_item(code: &str, result: pb::TestResult) -> Option<TestItem> {
    let t = item_template(code)?;
    Some(TestItem {
        code: t.code.into(),
        name: t.name.into(),
        method: t.method.into(),
        value: String::new(),
        unit: t.unit.into(),
        limit: t.limit.into(),
        result: result as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_START: i64 = 1_796_313_600_000; // 2026-12-04T00:00:00+08:00

    #[test]
    fn every_generated_report_is_valid_and_in_a_default_category() {
        let rules = huren_proto::rules::defaults();
        for market in ["shanxi", "jiuzhou", "tunhui", "zhangzitou", "market5"] {
            let reports = day(market, 7, 300, DAY_START);
            assert_eq!(reports.len(), 300);
            for r in &reports {
                huren_proto::validate::report(r, None)
                    .unwrap_or_else(|e| panic!("{market} {}: {e}", r.lot_id));
                let rule = huren_proto::rules::category(&rules, &r.category)
                    .unwrap_or_else(|| panic!("category {} not in the defaults", r.category));
                for required in &rule.required_items {
                    assert!(r.items.iter().any(|i| &i.code == required));
                }
                assert!(r.sampled_at_ms >= DAY_START && r.tested_at_ms < DAY_START + DAY_SPAN_MS);
                let delay = r.tested_at_ms - r.sampled_at_ms;
                assert!((MIN_TEST_DELAY_MS..MAX_TEST_DELAY_MS).contains(&delay));
                assert_eq!(
                    r.result,
                    huren_proto::validate::overall_result(&r.items) as i32
                );
            }
        }
    }

    #[test]
    fn a_day_is_deterministic_given_its_seed() {
        assert_eq!(
            day("shanxi", 42, 50, DAY_START),
            day("shanxi", 42, 50, DAY_START)
        );
        assert_ne!(
            day("shanxi", 42, 50, DAY_START),
            day("shanxi", 43, 50, DAY_START)
        );
        assert_ne!(
            day("shanxi", 42, 50, DAY_START),
            day("jiuzhou", 42, 50, DAY_START)
        );
    }

    #[test]
    fn two_to_four_percent_are_positive_and_their_values_cross_the_limit() {
        let reports = day("tunhui", 1, 250, DAY_START);
        let positive: Vec<&ReportIssued> = reports
            .iter()
            .filter(|r| r.result == TestResult::Positive as i32)
            .collect();
        assert!((5..=10).contains(&positive.len()), "{}", positive.len());
        for r in &reports {
            for i in &r.items {
                let t = item_template(&i.code).unwrap();
                let is_positive = i.result == TestResult::Positive as i32;
                if t.judge == Judge::Qualitative {
                    assert!(i.value.is_empty());
                    continue;
                }
                let value: f64 = i.value.parse().unwrap();
                let limit: f64 = i.limit.parse().unwrap();
                let crosses = match t.judge {
                    Judge::AtOrAbove => value >= limit,
                    _ => value > limit,
                };
                assert_eq!(crosses, is_positive, "{} {} {}", r.lot_id, i.code, i.value);
            }
        }
    }

    #[test]
    fn stall_codes_are_codes_and_the_classic_products_appear() {
        let reports = day("shanxi", 3, 400, DAY_START);
        for r in &reports {
            let (prefix, stall) = r.stall_code.split_once('-').unwrap();
            assert_eq!(prefix, "SX");
            assert_eq!(stall.len(), 4, "{}", r.stall_code);
        }
        for product in ["菜豆", "冬枣", "小白菜", "猪肉"] {
            assert!(reports.iter().any(|r| r.product == product), "{product}");
        }
    }

    #[test]
    fn market_codes_differ_for_the_unnamed_markets() {
        let codes: Vec<String> = ["shanxi", "jiuzhou", "tunhui", "zhangzitou", "market5"]
            .iter()
            .chain(&["market6", "market7"])
            .map(|m| market_code(m))
            .collect();
        assert_eq!(codes, ["SX", "JZ", "TH", "ZZT", "MA5", "MA6", "MA7"]);
        let r = &day("market5", 1, 1, DAY_START + 123)[0];
        assert_eq!(r.sampled_at_ms % 1000, 0, "times are whole seconds");
    }

    #[test]
    fn a_draw_fits_within_the_lot() {
        for r in day("jiuzhou", 9, 100, DAY_START) {
            let q = draw(&r, 5);
            let lot = huren_proto::quantity::parse(r.quantity.as_ref().unwrap()).unwrap();
            let taken = huren_proto::quantity::parse(&q).unwrap();
            assert!(taken.base <= lot.base && taken.base > 0);
        }
    }
}
