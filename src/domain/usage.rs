//! What messages cost, the pure part: the optional price table (`prices` in the
//! configuration), the `GET /v1/usage` query (`from`, `to`, `groupBy`) and the counting of
//! billable and free messages per group and category. No I/O.
//!
//! Since 1 July 2025 Meta bills per delivered template message (`pricing.type` `regular`),
//! by category and recipient country; `free_customer_service` and `free_entry_point`
//! messages are free. This is separate from the compatible API's plan limit (AtomChat's own
//! meter of conversations), which stays as it is.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::phone::PhoneNumber;

/// Prices per message: by category (lower case, as Meta's `pricing.category`), optionally
/// per recipient calling code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    /// `(category, calling code)` → price; code `None` is the category's default.
    prices: HashMap<(String, Option<u16>), f64>,
}

impl PriceTable {
    /// Reads `category[:calling code]=amount` pairs separated by commas (spaces allowed),
    /// e.g. `marketing:507=0.0740, marketing=0.0625, utility=0.008`.
    pub fn parse(text: &str) -> Result<PriceTable, String> {
        let mut prices = HashMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, amount) = pair
                .split_once('=')
                .ok_or_else(|| format!("'{pair}' is not category[:calling code]=amount"))?;
            let amount: f64 = amount
                .trim()
                .parse()
                .ok()
                .filter(|a: &f64| a.is_finite() && *a >= 0.0)
                .ok_or_else(|| format!("'{pair}': the amount must be a number >= 0"))?;
            let (category, code) = match key.split_once(':') {
                Some((c, code)) => {
                    let code = code.trim().trim_start_matches('+');
                    let code: u16 = code
                        .parse()
                        .ok()
                        .filter(|c| (1..=999).contains(c))
                        .ok_or_else(|| {
                            format!("'{pair}': the country must be a calling code such as 507")
                        })?;
                    (c, Some(code))
                }
                None => (key, None),
            };
            let category = category.trim().to_ascii_lowercase();
            if category.is_empty() || !category.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                return Err(format!(
                    "'{pair}': the category must be a word such as marketing"
                ));
            }
            prices.insert((category, code), amount);
        }
        Ok(PriceTable { prices })
    }

    /// The price of one billable message of `category` to `phone_number`, if the table has
    /// one (the calling code's, else the category's default).
    pub fn price(&self, category: &str, phone_number: &str) -> Option<f64> {
        let category = category.to_ascii_lowercase();
        let code = PhoneNumber::parse(phone_number)
            .ok()
            .map(|p| p.calling_code());
        code.and_then(|c| self.prices.get(&(category.clone(), Some(c))))
            .or_else(|| self.prices.get(&(category, None)))
            .copied()
    }
}

/// How `GET /v1/usage` groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Day,
    Template,
    Channel,
    Category,
}

impl GroupBy {
    pub const NAMES: [&'static str; 4] = ["day", "template", "channel", "category"];

    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "day" => Some(Self::Day),
            "template" => Some(Self::Template),
            "channel" => Some(Self::Channel),
            "category" => Some(Self::Category),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A bound of the usage window. A date (`YYYY-MM-DD`, UTC) is a whole day: as `from` its
/// first instant, as `to` the instant after its end (both inclusive). An RFC 3339 instant is
/// exact (`to` inclusive too).
pub fn parse_bound(s: &str, is_end: bool) -> Option<i64> {
    // Exactly `YYYY-MM-DD` (chrono alone would also take `2026-1-5` or a signed year).
    let is_date = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if is_date && let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if is_end { day.succ_opt()? } else { day };
        return Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    let t = DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis();
    Some(if is_end { t.saturating_add(1) } else { t })
}

/// The UTC day of a time, `YYYY-MM-DD`.
pub fn day_of(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// One priced message to count.
#[derive(Debug, Clone)]
pub struct Priced<'a> {
    pub key: String,
    pub category: &'a str,
    pub billable: bool,
    pub phone_number: &'a str,
}

/// One row of usage: a group and a category, its counts and, with a price table, the
/// estimated cost of its billable messages (`None` when a billable message has no price).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub key: String,
    pub category: String,
    pub billable: u64,
    pub free: u64,
    pub estimated_cost: Option<f64>,
}

/// Counts messages per `(key, category)`, in key then category order.
pub fn count<'a>(
    messages: impl IntoIterator<Item = Priced<'a>>,
    prices: Option<&PriceTable>,
) -> Vec<UsageRow> {
    let mut rows: BTreeMap<(String, String), (u64, u64, Option<f64>)> = BTreeMap::new();
    for m in messages {
        let category = m.category.to_ascii_lowercase();
        let entry = rows
            .entry((m.key, category.clone()))
            .or_insert((0, 0, Some(0.0)));
        if m.billable {
            entry.0 += 1;
            let price = prices.and_then(|p| p.price(&category, m.phone_number));
            entry.2 = match (entry.2, price) {
                (Some(total), Some(p)) => Some(total + p),
                _ => None,
            };
        } else {
            entry.1 += 1;
        }
    }
    rows.into_iter()
        .map(|((key, category), (billable, free, cost))| UsageRow {
            key,
            category,
            billable,
            free,
            estimated_cost: prices.and(cost).map(|c| (c * 1e6).round() / 1e6),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_tables_are_read_and_refused() {
        let t = PriceTable::parse("marketing:507=0.074, marketing=0.0625,UTILITY=0.008").unwrap();
        assert_eq!(t.price("marketing", "50755667788"), Some(0.074));
        assert_eq!(t.price("MARKETING", "5215512345678"), Some(0.0625));
        assert_eq!(t.price("utility", "50755667788"), Some(0.008));
        assert_eq!(t.price("authentication", "50755667788"), None);
        assert!(PriceTable::parse("marketing").is_err());
        assert!(PriceTable::parse("marketing=-1").is_err());
        assert!(PriceTable::parse("marketing:PA=1").is_err());
    }

    #[test]
    fn group_bys_are_their_names_in_json() {
        for name in GroupBy::NAMES {
            let g = GroupBy::parse(name).unwrap();
            assert_eq!(g.as_str(), name);
            assert_eq!(serde_json::to_value(g).unwrap(), name);
        }
    }

    #[test]
    fn bounds_are_inclusive_days_or_instants() {
        assert_eq!(parse_bound("2026-01-01", false), Some(1_767_225_600_000));
        assert_eq!(
            parse_bound("2026-01-01", true),
            Some(1_767_225_600_000 + 86_400_000)
        );
        assert_eq!(
            parse_bound("2026-01-01T00:00:00Z", true),
            Some(1_767_225_600_001)
        );
        assert_eq!(parse_bound("2026-13-01", false), None);
        assert_eq!(parse_bound("yesterday", false), None);
        // Only the exact shapes the OpenAPI document gives (`format: date` / `date-time`).
        assert_eq!(parse_bound("2026-1-05", false), None);
        assert_eq!(parse_bound(" 2026-01-01", false), None);
        assert_eq!(parse_bound("+2026-01-01", false), None);
        assert_eq!(parse_bound("", true), None);
        assert_eq!(day_of(1_767_225_600_000), "2026-01-01");
    }

    #[test]
    fn counts_split_billable_and_free_and_estimate() {
        let prices = PriceTable::parse("marketing=0.05,utility=0.01").unwrap();
        let m = |key: &str, category: &'static str, billable: bool| Priced {
            key: key.into(),
            category,
            billable,
            phone_number: "50755667788",
        };
        let rows = count(
            [
                m("a", "marketing", true),
                m("a", "marketing", true),
                m("a", "utility", false),
                m("b", "authentication", true),
            ],
            Some(&prices),
        );
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].billable, rows[0].free), (2, 0));
        assert_eq!(rows[0].estimated_cost, Some(0.1));
        assert_eq!(rows[1].estimated_cost, Some(0.0));
        assert_eq!(rows[2].estimated_cost, None, "no price for authentication");
    }
}
