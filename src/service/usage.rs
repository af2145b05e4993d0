//! What an account's messages cost: Meta's pricing of each, counted per day, template,
//! channel or category, with an estimate when the configuration has a price table.

use crate::api::events::{Usage, UsageRow, UsageTotal};
use crate::app::App;
use crate::domain::usage::{self, GroupBy, PriceTable, Priced};
use crate::store::StoreError;

/// The usage of `account_id` over `[from, to)`, grouped by `group_by`.
pub async fn report(
    app: &App,
    account_id: &str,
    from: i64,
    to: i64,
    group_by: GroupBy,
) -> Result<Usage, StoreError> {
    let prices = app
        .config
        .prices
        .as_deref()
        .and_then(|p| PriceTable::parse(p).ok());
    let messages = app.store.priced_messages(account_id, from, to).await?;
    let rows = usage::count(
        messages.iter().map(|m| Priced {
            key: match group_by {
                GroupBy::Day => usage::day_of(m.at),
                GroupBy::Template => m.template_id.clone(),
                GroupBy::Channel => m.channel_id.clone(),
                GroupBy::Category => m
                    .pricing
                    .category
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            },
            category: m.pricing.category.as_deref().unwrap_or(""),
            billable: m.pricing.is_billable().unwrap_or(true),
            phone_number: &m.phone_number,
        }),
        prices.as_ref(),
    );
    let (mut billable, mut free, mut cost) = (0u64, 0u64, Some(0.0f64));
    let data: Vec<UsageRow> = rows
        .into_iter()
        .map(|r| {
            billable += r.billable;
            free += r.free;
            cost = match (cost, r.estimated_cost) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            // The key again under the group's own name (`category` already is one).
            let key = |by: GroupBy| (group_by == by).then(|| r.key.clone());
            UsageRow {
                day: key(GroupBy::Day),
                template_id: key(GroupBy::Template).map(Into::into),
                channel_id: key(GroupBy::Channel).map(Into::into),
                category: key(GroupBy::Category).unwrap_or(r.category),
                key: r.key,
                billable: r.billable,
                free: r.free,
                estimated_cost: r.estimated_cost,
            }
        })
        .collect();
    let priced = prices.is_some();
    Ok(Usage {
        from: crate::format_ms(from),
        to: crate::format_ms(to - 1),
        group_by,
        currency: priced.then(|| app.config.price_currency.clone()),
        data,
        total: UsageTotal {
            billable,
            free,
            estimated_cost: if priced {
                cost.map(|c| (c * 1e6).round() / 1e6)
            } else {
                None
            },
        },
    })
}
