//! A `WHERE` clause built from a scope and optional filters, with its parameters numbered in
//! the order they were added (`$1`, `$2`, …), as the read models' lists, the ledger and the
//! statistics build theirs. One builder, so the numbering and the empty-scope case are written
//! once.

/// A parameter of a [`Filter`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// The clause and its parameters.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// `$from, $from+1, …` for `n` parameters.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Filter {
    /// Rows whose `column` is one of `ids` (none when `ids` is empty).
    pub fn within(column: &str, ids: &[String]) -> Self {
        if ids.is_empty() {
            return Self {
                sql: "1 = 0".into(),
                binds: Vec::new(),
            };
        }
        Self {
            sql: format!("{column} IN ({})", placeholders(1, ids.len())),
            binds: ids.iter().cloned().map(Bind::Text).collect(),
        }
    }

    /// The number of the next parameter, after adding it.
    fn param(&mut self, bind: Bind) -> usize {
        self.binds.push(bind);
        self.binds.len()
    }

    /// `AND column = value`, when a value is given.
    pub fn eq(&mut self, column: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            let n = self.param(Bind::Text(v.to_owned()));
            self.sql.push_str(&format!(" AND {column} = ${n}"));
        }
        self
    }

    /// `AND column op value` for an integer (an instant), when a value is given.
    pub fn cmp(&mut self, column: &str, op: &str, value: Option<i64>) -> &mut Self {
        if let Some(v) = value {
            let n = self.param(Bind::Int(v));
            self.sql.push_str(&format!(" AND {column} {op} ${n}"));
        }
        self
    }

    /// `AND` the fragment `make` builds around the placeholder of text parameter `value`.
    pub fn and_with(&mut self, value: String, make: impl FnOnce(&str) -> String) -> &mut Self {
        let n = self.param(Bind::Text(value));
        self.sql.push_str(" AND ");
        self.sql.push_str(&make(&format!("${n}")));
        self
    }
}

/// Binds a [`Filter`]'s parameters onto a sqlx query, in order (inside `with_pool!`, once per
/// backend).
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let mut q = $query;
        for b in &$filter.binds {
            q = match b {
                $crate::db::filter::Bind::Text(t) => q.bind(t.clone()),
                $crate::db::filter::Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_filter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_the_order_added() {
        let mut f = Filter::within("h.enterprise_id", &["a".into(), "b".into()]);
        f.eq("h.grade", Some("major"))
            .eq("h.state", None)
            .cmp("h.created_at", ">=", Some(5))
            .and_with("2026-03-01".into(), |p| format!("h.current_deadline < {p}"));
        assert_eq!(
            f.sql,
            "h.enterprise_id IN ($1,$2) AND h.grade = $3 AND h.created_at >= $4 AND h.current_deadline < $5"
        );
        assert_eq!(
            f.binds,
            vec![
                Bind::Text("a".into()),
                Bind::Text("b".into()),
                Bind::Text("major".into()),
                Bind::Int(5),
                Bind::Text("2026-03-01".into()),
            ]
        );
        let none = Filter::within("h.enterprise_id", &[]);
        assert_eq!(none.sql, "1 = 0");
        assert_eq!(placeholders(4, 3), "$4,$5,$6");
    }
}
