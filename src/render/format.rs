//! Numbers as the client reads them: money in the currency's usual style
//! (symbol, grouping and decimal mark), counts grouped, changes with an arrow.

/// How one currency is written: `R$ 1.234,56`, `1.234,56 €`, `$1,234.56`.
#[derive(Debug, Clone, Copy)]
struct Style {
    symbol: &'static str,
    /// The symbol follows the amount (`1.234,56 €`).
    after: bool,
    /// A space between symbol and amount.
    space: bool,
    group: char,
    decimal: char,
    decimals: usize,
}

/// The style of the currency's home locale; unknown codes read `1,234.56 XYZ`.
fn style(currency: &str) -> (Style, Option<&'static str>) {
    let s = |symbol, after, space, group, decimal, decimals| Style { symbol, after, space, group, decimal, decimals };
    let st = match currency {
        "USD" => s("$", false, false, ',', '.', 2),
        "CAD" => s("CA$", false, false, ',', '.', 2),
        "AUD" => s("A$", false, false, ',', '.', 2),
        "GBP" => s("£", false, false, ',', '.', 2),
        "BRL" => s("R$", false, true, '.', ',', 2),
        "EUR" => s("€", true, true, '.', ',', 2),
        "ARS" | "COP" | "CLP" => s("$", false, true, '.', ',', if currency == "CLP" { 0 } else { 2 }),
        "MXN" => s("MX$", false, false, ',', '.', 2),
        "JPY" => s("¥", false, false, ',', '.', 0),
        "INR" => s("₹", false, false, ',', '.', 2),
        "CHF" => s("CHF", false, true, '\'', '.', 2),
        _ => return (s("", true, true, ',', '.', 2), None),
    };
    (st, Some(st.symbol))
}

/// `1234.5` in `BRL` → `R$ 1.234,50`.
pub fn money(amount: f64, currency: &str) -> String {
    let (st, symbol) = style(currency);
    let number = grouped(amount.abs(), st.decimals, st.group, st.decimal);
    let sign = if amount < 0.0 && number.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    let symbol = symbol.unwrap_or(currency);
    let space = if st.space || symbol == currency { " " } else { "" };
    if st.after || symbol == currency {
        format!("{sign}{number}{space}{symbol}")
    } else {
        format!("{sign}{symbol}{space}{number}")
    }
}

/// A count: `12345` → `12,345` (`12.345` where the currency's locale groups with dots).
pub fn count(n: f64, currency: &str) -> String {
    let (st, _) = style(currency);
    grouped(n, 0, st.group, st.decimal)
}

/// A number with `decimals` places: `2.5` → `2.50` (`2,50`).
pub fn decimal(n: f64, decimals: usize, currency: &str) -> String {
    let (st, _) = style(currency);
    grouped(n, decimals, st.group, st.decimal)
}

/// The change from `previous` to `now` in %, one decimal; `None` without a base.
pub fn change_pct(now: Option<f64>, previous: Option<f64>) -> Option<f64> {
    match (now, previous) {
        (Some(n), Some(p)) if p != 0.0 => Some(((n - p) / p * 1000.0).round() / 10.0),
        _ => None,
    }
}

/// `▲ 12.5 %`, `▼ 3.0 %`, `► 0.0 %`, or `–` without a base.
pub fn arrow(pct: Option<f64>, currency: &str) -> String {
    match pct {
        None => "–".to_string(),
        Some(p) => {
            let arrow = if p > 0.0 {
                "▲"
            } else if p < 0.0 {
                "▼"
            } else {
                "►"
            };
            format!("{arrow} {} %", decimal(p.abs(), 1, currency))
        }
    }
}

fn grouped(n: f64, decimals: usize, group: char, decimal: char) -> String {
    let fixed = format!("{:.*}", decimals, n);
    let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::with_capacity(fixed.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    if frac.is_empty() { format!("{sign}{out}") } else { format!("{sign}{out}{decimal}{frac}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_follows_the_currency_style() {
        assert_eq!(money(1234.5, "BRL"), "R$ 1.234,50");
        assert_eq!(money(1234.5, "EUR"), "1.234,50 €");
        assert_eq!(money(1234567.891, "USD"), "$1,234,567.89");
        assert_eq!(money(0.0, "USD"), "$0.00");
        assert_eq!(money(-12.0, "GBP"), "-£12.00");
        assert_eq!(money(1500.0, "JPY"), "¥1,500");
        assert_eq!(money(12.5, "XYZ"), "12.50 XYZ");
    }

    #[test]
    fn counts_changes_and_arrows() {
        assert_eq!(count(1234567.0, "BRL"), "1.234.567");
        assert_eq!(count(999.0, "USD"), "999");
        assert_eq!(change_pct(Some(120.0), Some(100.0)), Some(20.0));
        assert_eq!(change_pct(Some(1.0), Some(0.0)), None);
        assert_eq!(arrow(Some(12.5), "BRL"), "▲ 12,5 %");
        assert_eq!(arrow(Some(-3.0), "USD"), "▼ 3.0 %");
        assert_eq!(arrow(None, "USD"), "–");
    }
}
