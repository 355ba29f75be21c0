//! Property tests: random conditions are printed to text, parsed, and evaluated on random items;
//! the result must equal a small independent reference interpreter's.

#![allow(clippy::expect_used)]

mod common;
use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use shoal_expr::{ConditionKind, ExprContext, parse_condition};
use shoal_types::{AttributeValue, Item};

// ---------- the model ----------

#[derive(Debug, Clone)]
enum Step {
    Name(&'static str),
    Index(usize),
}

type MPath = Vec<Step>;

#[derive(Debug, Clone)]
enum MOperand {
    Path(MPath),
    Val(AttributeValue),
    Size(MPath),
}

#[derive(Debug, Clone)]
enum MCond {
    Cmp(&'static str, MOperand, MOperand),
    Between(MOperand, MOperand, MOperand),
    In(MOperand, Vec<MOperand>),
    Exists(MPath),
    NotExists(MPath),
    Type(MPath, &'static str),
    BeginsWith(MPath, AttributeValue),
    Contains(MPath, AttributeValue),
    And(Box<MCond>, Box<MCond>),
    Or(Box<MCond>, Box<MCond>),
    Not(Box<MCond>),
}

fn lookup<'a>(item: &'a Item, path: &MPath) -> Option<&'a AttributeValue> {
    let mut cur: Option<&AttributeValue> = None;
    for (i, step) in path.iter().enumerate() {
        cur = match (i, step, cur) {
            (0, Step::Name(n), _) => item.get(*n),
            (_, Step::Name(n), Some(AttributeValue::M(m))) => m.get(*n),
            (_, Step::Index(k), Some(AttributeValue::L(l))) => l.get(*k),
            _ => None,
        };
        cur?;
    }
    cur
}

fn int(n: &shoal_types::Number) -> i64 {
    n.to_i64().expect("generator uses small integers")
}

/// A canonical text form: equal values (DynamoDB semantics) have equal forms.
fn canon(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => format!("S{s:?}"),
        AttributeValue::N(n) => format!("N{}", int(n)),
        AttributeValue::B(b) => format!("B{b:?}"),
        AttributeValue::Bool(b) => format!("BOOL{b}"),
        AttributeValue::Null => "NULL".into(),
        AttributeValue::M(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", canon(v))).collect();
            format!("M{{{}}}", parts.join(","))
        }
        AttributeValue::L(l) => {
            format!("L[{}]", l.iter().map(canon).collect::<Vec<_>>().join(","))
        }
        AttributeValue::Ss(s) => {
            let mut s = s.clone();
            s.sort();
            format!("SS{s:?}")
        }
        AttributeValue::Ns(s) => {
            let mut s: Vec<i64> = s.iter().map(int).collect();
            s.sort();
            format!("NS{s:?}")
        }
        AttributeValue::Bs(s) => {
            let mut s = s.clone();
            s.sort();
            format!("BS{s:?}")
        }
    }
}

fn order(a: &AttributeValue, b: &AttributeValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(int(x).cmp(&int(y))),
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn operand(item: &Item, o: &MOperand) -> Option<AttributeValue> {
    match o {
        MOperand::Path(p) => lookup(item, p).cloned(),
        MOperand::Val(v) => Some(v.clone()),
        MOperand::Size(p) => {
            let n = match lookup(item, p)? {
                AttributeValue::S(s) => s.chars().count(),
                AttributeValue::B(b) => b.len(),
                AttributeValue::L(l) => l.len(),
                AttributeValue::M(m) => m.len(),
                AttributeValue::Ss(s) => s.len(),
                AttributeValue::Ns(s) => s.len(),
                AttributeValue::Bs(s) => s.len(),
                _ => return None,
            };
            Some(n_val(n as i64))
        }
    }
}

fn type_name(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "M",
        AttributeValue::L(_) => "L",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
    }
}

fn model_eval(c: &MCond, item: &Item) -> bool {
    match c {
        MCond::Cmp(op, a, b) => {
            let (a, b) = (operand(item, a), operand(item, b));
            let eq = matches!((&a, &b), (Some(x), Some(y)) if canon(x) == canon(y));
            let ord = match (&a, &b) {
                (Some(x), Some(y)) => order(x, y),
                _ => None,
            };
            match *op {
                "=" => eq,
                "<>" => !eq,
                "<" => ord.is_some_and(|o| o.is_lt()),
                "<=" => ord.is_some_and(|o| o.is_le()),
                ">" => ord.is_some_and(|o| o.is_gt()),
                _ => ord.is_some_and(|o| o.is_ge()),
            }
        }
        MCond::Between(v, lo, hi) => match (operand(item, v), operand(item, lo), operand(item, hi))
        {
            (Some(v), Some(lo), Some(hi)) => {
                order(&v, &lo).is_some_and(|o| o.is_ge())
                    && order(&v, &hi).is_some_and(|o| o.is_le())
            }
            _ => false,
        },
        MCond::In(v, list) => match operand(item, v) {
            Some(v) => list
                .iter()
                .any(|o| operand(item, o).is_some_and(|w| canon(&w) == canon(&v))),
            None => false,
        },
        MCond::Exists(p) => lookup(item, p).is_some(),
        MCond::NotExists(p) => lookup(item, p).is_none(),
        MCond::Type(p, t) => lookup(item, p).is_some_and(|v| type_name(v) == *t),
        MCond::BeginsWith(p, pre) => match (lookup(item, p), pre) {
            (Some(AttributeValue::S(s)), AttributeValue::S(x)) => s.starts_with(x.as_str()),
            (Some(AttributeValue::B(s)), AttributeValue::B(x)) => s.starts_with(x),
            _ => false,
        },
        MCond::Contains(p, x) => match (lookup(item, p), x) {
            (Some(AttributeValue::S(s)), AttributeValue::S(x)) => s.contains(x.as_str()),
            (Some(AttributeValue::B(s)), AttributeValue::B(x)) => {
                x.is_empty() || s.windows(x.len()).any(|w| w == x.as_slice())
            }
            (Some(AttributeValue::Ss(s)), AttributeValue::S(x)) => s.contains(x),
            (Some(AttributeValue::Ns(s)), AttributeValue::N(x)) => {
                s.iter().any(|e| int(e) == int(x))
            }
            (Some(AttributeValue::Bs(s)), AttributeValue::B(x)) => s.contains(x),
            (Some(AttributeValue::L(l)), x) => l.iter().any(|e| canon(e) == canon(x)),
            _ => false,
        },
        MCond::And(a, b) => model_eval(a, item) && model_eval(b, item),
        MCond::Or(a, b) => model_eval(a, item) || model_eval(b, item),
        MCond::Not(a) => !model_eval(a, item),
    }
}

// ---------- printing ----------

struct Printer {
    values: HashMap<String, AttributeValue>,
    names: HashMap<String, String>,
    use_name_placeholders: bool,
}

impl Printer {
    fn val(&mut self, v: &AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), v.clone());
        key
    }

    fn path(&mut self, p: &MPath) -> String {
        let mut out = String::new();
        for (i, s) in p.iter().enumerate() {
            match s {
                Step::Name(n) => {
                    if i > 0 {
                        out.push('.');
                    }
                    if self.use_name_placeholders {
                        let key = format!("#{n}");
                        self.names.insert(key.clone(), n.to_string());
                        out.push_str(&key);
                    } else {
                        out.push_str(n);
                    }
                }
                Step::Index(k) => out.push_str(&format!("[{k}]")),
            }
        }
        out
    }

    fn operand(&mut self, o: &MOperand) -> String {
        match o {
            MOperand::Path(p) => self.path(p),
            MOperand::Val(v) => self.val(v),
            MOperand::Size(p) => format!("size({})", self.path(p)),
        }
    }

    /// Prints with the fewest parentheses the precedence rules need (OR 1, AND 2, NOT 3).
    fn cond(&mut self, c: &MCond, parent: u8) -> String {
        let (prec, text) = match c {
            MCond::Cmp(op, a, b) => (4, format!("{} {op} {}", self.operand(a), self.operand(b))),
            MCond::Between(v, lo, hi) => (
                4,
                format!(
                    "{} BETWEEN {} AND {}",
                    self.operand(v),
                    self.operand(lo),
                    self.operand(hi)
                ),
            ),
            MCond::In(v, list) => {
                let v = self.operand(v);
                let list: Vec<String> = list.iter().map(|o| self.operand(o)).collect();
                (4, format!("{v} IN ({})", list.join(", ")))
            }
            MCond::Exists(p) => (4, format!("attribute_exists({})", self.path(p))),
            MCond::NotExists(p) => (4, format!("attribute_not_exists ( {} )", self.path(p))),
            MCond::Type(p, t) => {
                let p = self.path(p);
                (4, format!("attribute_type({p}, {})", self.val(&s(t))))
            }
            MCond::BeginsWith(p, v) => {
                let p = self.path(p);
                (4, format!("begins_with({p}, {})", self.val(v)))
            }
            MCond::Contains(p, v) => {
                let p = self.path(p);
                (4, format!("contains({p},{})", self.val(v)))
            }
            MCond::And(a, b) => (2, format!("{} AND {}", self.cond(a, 2), self.cond(b, 3))),
            MCond::Or(a, b) => (1, format!("{} or {}", self.cond(a, 1), self.cond(b, 2))),
            MCond::Not(a) => (3, format!("NOT {}", self.cond(a, 3))),
        };
        if prec < parent {
            format!("({text})")
        } else {
            text
        }
    }
}

// ---------- generators ----------

fn n_val(i: i64) -> AttributeValue {
    n(&i.to_string())
}

fn scalar() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        6 => (-2i64..3).prop_map(n_val),
        3 => prop::sample::select(vec!["", "a", "ab", "b"]).prop_map(s),
        1 => prop::sample::select(vec![vec![], vec![1u8], vec![1, 2], vec![2]]).prop_map(AttributeValue::B),
        1 => any::<bool>().prop_map(AttributeValue::Bool),
        1 => Just(AttributeValue::Null),
    ]
}

fn value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        8 => scalar(),
        1 => prop::sample::subsequence(vec!["a", "ab", "b"], 1..=3).prop_map(|v| ss(&v)),
        1 => prop::sample::subsequence(vec!["1", "2", "3"], 1..=3).prop_map(|v| ns(&v)),
        1 => prop::sample::subsequence(vec![vec![1u8], vec![2]], 1..=2).prop_map(AttributeValue::Bs),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(AttributeValue::L),
        1 => (scalar(), scalar()).prop_map(|(x, y)| m(&[("x", x), ("y", y)])),
    ]
}

fn random_item() -> impl Strategy<Value = Item> {
    (
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of((scalar(), prop::option::of(value())).prop_map(|(x, y)| {
            let mut mm = Item::new();
            mm.insert("x".into(), x);
            if let Some(y) = y {
                mm.insert("y".into(), y);
            }
            AttributeValue::M(mm)
        })),
        prop::option::of(prop::collection::vec(value(), 0..3).prop_map(AttributeValue::L)),
    )
        .prop_map(|(a, b, c, mm, ll)| {
            let mut it = Item::new();
            for (k, v) in [("a", a), ("b", b), ("c", c), ("m", mm), ("l", ll)] {
                if let Some(v) = v {
                    it.insert(k.to_string(), v);
                }
            }
            it
        })
}

fn path() -> impl Strategy<Value = MPath> {
    prop::sample::select(vec![
        vec![Step::Name("a")],
        vec![Step::Name("b")],
        vec![Step::Name("c")],
        vec![Step::Name("m"), Step::Name("x")],
        vec![Step::Name("m"), Step::Name("y")],
        vec![Step::Name("l"), Step::Index(0)],
        vec![Step::Name("l"), Step::Index(1)],
        vec![Step::Name("l")],
        vec![Step::Name("m")],
    ])
}

fn m_operand() -> impl Strategy<Value = MOperand> {
    prop_oneof![
        3 => path().prop_map(MOperand::Path),
        3 => value().prop_map(MOperand::Val),
        1 => path().prop_map(MOperand::Size),
    ]
}

fn leaf() -> impl Strategy<Value = MCond> {
    prop_oneof![
        (
            prop::sample::select(vec!["=", "<>", "<", "<=", ">", ">="]),
            m_operand(),
            m_operand()
        )
            .prop_map(|(op, a, b)| MCond::Cmp(op, a, b)),
        (m_operand(), m_operand(), m_operand()).prop_map(|(v, lo, hi)| MCond::Between(v, lo, hi)),
        (m_operand(), prop::collection::vec(m_operand(), 1..4)).prop_map(|(v, l)| MCond::In(v, l)),
        path().prop_map(MCond::Exists),
        path().prop_map(MCond::NotExists),
        (
            path(),
            prop::sample::select(vec![
                "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"
            ])
        )
            .prop_map(|(p, t)| MCond::Type(p, t)),
        (
            path(),
            prop_oneof![
                prop::sample::select(vec!["", "a", "b"]).prop_map(s),
                prop::sample::select(vec![vec![], vec![1u8]]).prop_map(AttributeValue::B)
            ]
        )
            .prop_map(|(p, v)| MCond::BeginsWith(p, v)),
        (path(), scalar()).prop_map(|(p, v)| MCond::Contains(p, v)),
    ]
}

fn condition() -> impl Strategy<Value = MCond> {
    leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| MCond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| MCond::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| MCond::Not(Box::new(a))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn evaluate_matches_the_reference_interpreter(
        c in condition(),
        items in prop::collection::vec(random_item(), 1..4),
        use_names in any::<bool>(),
    ) {
        let mut pr = Printer { values: HashMap::new(), names: HashMap::new(), use_name_placeholders: use_names };
        let text = pr.cond(&c, 0);
        let mut ctx = ExprContext::new(Some(&pr.names), Some(&pr.values));
        match parse_condition(&text, &mut ctx, ConditionKind::Filter) {
            Ok(parsed) => {
                ctx.check_all_used().unwrap();
                for it in &items {
                    prop_assert_eq!(parsed.evaluate(it), model_eval(&c, it), "{} on {:?}", text, it);
                }
            }
            // The only rejections of a generated condition: BETWEEN with constant bounds out of
            // order or of two types.
            Err(e) => prop_assert!(
                e.message.contains("BETWEEN operator requires upper bound")
                    || e.message.contains("BETWEEN operator requires same data type"),
                "{}: {}", text, e
            ),
        }
    }
}
