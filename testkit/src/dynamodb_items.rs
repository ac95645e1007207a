//! The item-keeping side of the DynamoDB stand-in (`dynamodb.rs`): tables declared with their
//! partition key, items kept in memory, and the subset of DynamoDB's expression language the
//! function sends, evaluated as DynamoDB evaluates it, so a benchmark can drive a whole run
//! (a read returns what was written; a failed condition fails the write and can return the old
//! item; a conditional end write is recorded once).
//!
//! Supported: `PutItem`, `UpdateItem`, `GetItem` on a partition key only; conditions with
//! `AND` / `OR` / `NOT`, parentheses, `= < <= > >=`, `attribute_exists`,
//! `attribute_not_exists`, `begins_with`; updates with `SET` (`= operand` or
//! `if_not_exists(path, operand)`) and `REMOVE`, top-level attributes; `ReturnValues`
//! `NONE` / `ALL_OLD` / `ALL_NEW` and `ReturnValuesOnConditionCheckFailure`; a
//! `ProjectionExpression` of top-level names. Anything else (another operation, `ADD`, nested
//! paths, `<>`, `BETWEEN`, `IN`, a key attribute missing or extra, an unknown table, a
//! placeholder without its value) is answered with a `ValidationException`, never guessed.
//!
//! Written here rather than taken from a crate: no maintained Rust crate evaluates DynamoDB
//! expressions, DynamoDB Local's licence is not an open-source one, and moto is the Python
//! process the benchmark keeps off its two cores while timing (`dynamodb.rs`).

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

/// An item: attribute name → AttributeValue in its JSON wire form (`{"S": "…"}`, `{"N": "…"}`).
pub type Item = Map<String, Value>;

/// A call the stand-in refused or whose condition failed, as DynamoDB answers it (HTTP 400).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The error's shape name (`ConditionalCheckFailedException`, `ValidationException`,
    /// `ResourceNotFoundException`).
    pub kind: &'static str,
    /// Its message.
    pub message: String,
    /// The old item, for a failed condition with `ReturnValuesOnConditionCheckFailure=ALL_OLD`.
    pub item: Option<Item>,
}

impl Refusal {
    fn invalid(message: impl Into<String>) -> Self {
        Refusal {
            kind: "ValidationException",
            message: message.into(),
            item: None,
        }
    }

    /// The awsJson1.0 error body.
    pub fn body(&self) -> String {
        let mut body = json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{}", self.kind),
            "message": self.message,
        });
        if let Some(item) = &self.item {
            body["Item"] = Value::Object(item.clone());
        }
        body.to_string()
    }
}

/// Tables and their items. Each call holds the lock from its condition to its write, so a
/// conditional write is atomic as in DynamoDB.
#[derive(Debug, Default)]
pub struct Tables {
    /// Table name → its partition key attribute.
    keys: HashMap<String, String>,
    /// (table, the key's wire form) → item.
    items: Mutex<HashMap<(String, String), Item>>,
}

impl Tables {
    /// Tables `(name, partition key attribute)`, empty.
    pub fn new<'a>(tables: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Tables {
            keys: tables
                .into_iter()
                .map(|(t, k)| (t.to_owned(), k.to_owned()))
                .collect(),
            items: Mutex::default(),
        }
    }

    /// Items kept in `table` now.
    pub fn len(&self, table: &str) -> usize {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.keys().filter(|(t, _)| t == table).count()
    }

    /// Whether no table holds an item.
    pub fn is_empty(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Answers `operation` (the `X-Amz-Target` suffix) with the request `body`: the answer's
    /// JSON, or the refusal.
    pub fn call(&self, operation: &str, body: &Value) -> Result<Value, Refusal> {
        let table = body
            .get("TableName")
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::invalid("TableName is required"))?;
        let key_attribute = self.keys.get(table).ok_or_else(|| Refusal {
            kind: "ResourceNotFoundException",
            message: format!("Requested resource not found: {table}"),
            item: None,
        })?;
        let ctx = Context::of(body)?;
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        match operation {
            "PutItem" => {
                let item = object(body, "Item")?;
                let key = key_of(&item, key_attribute, false)?;
                let id = (table.to_owned(), key);
                let old = items.get(&id);
                ctx.check(body, old)?;
                let old = items.insert(id, item);
                Ok(returned(body, old, None)?)
            }
            "UpdateItem" => {
                let key_item = object(body, "Key")?;
                let key = key_of(&key_item, key_attribute, true)?;
                let id = (table.to_owned(), key);
                let old = items.get(&id).cloned();
                ctx.check(body, old.as_ref())?;
                let mut new = old.clone().unwrap_or(key_item);
                if let Some(text) = body.get("UpdateExpression").and_then(Value::as_str) {
                    let actions = parse_update(text)?;
                    apply(&actions, &ctx, &mut new)?;
                }
                if !new.contains_key(key_attribute) {
                    return Err(Refusal::invalid("an update may not remove the key"));
                }
                items.insert(id, new.clone());
                returned(body, old, Some(new))
            }
            "GetItem" => {
                let key_item = object(body, "Key")?;
                let key = key_of(&key_item, key_attribute, true)?;
                let Some(item) = items.get(&(table.to_owned(), key)) else {
                    return Ok(json!({}));
                };
                let item = match body.get("ProjectionExpression").and_then(Value::as_str) {
                    Some(text) => project(item, text, &ctx)?,
                    None => item.clone(),
                };
                Ok(json!({ "Item": item }))
            }
            other => Err(Refusal::invalid(format!(
                "{other} is not served by the stand-in"
            ))),
        }
    }
}

fn object(body: &Value, field: &str) -> Result<Item, Refusal> {
    body.get(field)
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| Refusal::invalid(format!("{field} is required")))
}

/// The key's wire form; with `exact`, the map must hold the key and nothing else (a `Key`).
fn key_of(item: &Item, key_attribute: &str, exact: bool) -> Result<String, Refusal> {
    let key = item
        .get(key_attribute)
        .ok_or_else(|| Refusal::invalid(format!("missing the key {key_attribute} in the item")))?;
    if exact && item.len() != 1 {
        return Err(Refusal::invalid(
            "the provided key element does not match the schema",
        ));
    }
    Ok(key.to_string())
}

/// What `ReturnValues` asks for (the old item, or the new one of an update).
fn returned(body: &Value, old: Option<Item>, new: Option<Item>) -> Result<Value, Refusal> {
    let attributes = match body.get("ReturnValues").and_then(Value::as_str) {
        None | Some("NONE") => None,
        Some("ALL_OLD") => old,
        Some("ALL_NEW") if new.is_some() => new,
        Some(other) => {
            return Err(Refusal::invalid(format!(
                "ReturnValues {other} is not served by the stand-in"
            )));
        }
    };
    Ok(match attributes {
        Some(item) => json!({ "Attributes": item }),
        None => json!({}),
    })
}

/// The expression attribute names and values of one request.
struct Context {
    names: HashMap<String, String>,
    values: HashMap<String, Value>,
}

impl Context {
    fn of(body: &Value) -> Result<Self, Refusal> {
        let map = |field: &str| -> HashMap<String, Value> {
            body.get(field)
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        let mut names = HashMap::new();
        for (k, v) in map("ExpressionAttributeNames") {
            let v = v
                .as_str()
                .ok_or_else(|| Refusal::invalid("an attribute name must be a string"))?;
            names.insert(k, v.to_owned());
        }
        Ok(Context {
            names,
            values: map("ExpressionAttributeValues"),
        })
    }

    fn name(&self, path: &Token) -> Result<String, Refusal> {
        match path {
            Token::Name(n) => self
                .names
                .get(n)
                .cloned()
                .ok_or_else(|| Refusal::invalid(format!("{n} is not defined"))),
            Token::Word(w) => Ok(w.clone()),
            other => Err(Refusal::invalid(format!("expected a path, got {other:?}"))),
        }
    }

    fn value(&self, placeholder: &str) -> Result<Value, Refusal> {
        self.values
            .get(placeholder)
            .cloned()
            .ok_or_else(|| Refusal::invalid(format!("{placeholder} is not defined")))
    }

    /// The request's `ConditionExpression` against `old` (absent item: every attribute
    /// missing); a failure carries the old item when asked for.
    fn check(&self, body: &Value, old: Option<&Item>) -> Result<(), Refusal> {
        let Some(text) = body.get("ConditionExpression").and_then(Value::as_str) else {
            return Ok(());
        };
        let condition = Parser::new(text)?.condition()?;
        let empty = Item::new();
        if condition.holds(self, old.unwrap_or(&empty))? {
            return Ok(());
        }
        let all_old = body
            .get("ReturnValuesOnConditionCheckFailure")
            .and_then(Value::as_str)
            == Some("ALL_OLD");
        Err(Refusal {
            kind: "ConditionalCheckFailedException",
            message: "The conditional request failed".to_owned(),
            item: if all_old { old.cloned() } else { None },
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `#name`.
    Name(String),
    /// `:value`.
    Value(String),
    /// A bare identifier (an attribute, a function or a keyword).
    Word(String),
    /// Punctuation and comparators.
    Sym(&'static str),
}

fn tokens(text: &str) -> Result<Vec<Token>, Refusal> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' || c == ':' || ident(c) {
            let start = i;
            i += 1;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(match c {
                '#' => Token::Name(word),
                ':' => Token::Value(word),
                _ => Token::Word(word),
            });
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let sym = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "<>" => Some("<>"),
            _ => None,
        };
        if let Some(sym) = sym {
            out.push(Token::Sym(sym));
            i += 2;
            continue;
        }
        let sym = match c {
            '(' => "(",
            ')' => ")",
            ',' => ",",
            '=' => "=",
            '<' => "<",
            '>' => ">",
            '+' => "+",
            '-' => "-",
            '.' => ".",
            '[' => "[",
            ']' => "]",
            _ => {
                return Err(Refusal::invalid(format!(
                    "unexpected character {c:?} in an expression"
                )));
            }
        };
        out.push(Token::Sym(sym));
        i += 1;
    }
    Ok(out)
}

/// A condition, parsed.
#[derive(Debug)]
enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Exists(Token, bool),
    BeginsWith(Token, Token),
    Compare(Token, &'static str, Token),
}

impl Condition {
    fn holds(&self, ctx: &Context, item: &Item) -> Result<bool, Refusal> {
        Ok(match self {
            Condition::And(a, b) => a.holds(ctx, item)? && b.holds(ctx, item)?,
            Condition::Or(a, b) => a.holds(ctx, item)? || b.holds(ctx, item)?,
            Condition::Not(a) => !a.holds(ctx, item)?,
            Condition::Exists(path, exists) => item.contains_key(&ctx.name(path)?) == *exists,
            Condition::BeginsWith(a, b) => match (operand(a, ctx, item)?, operand(b, ctx, item)?) {
                (Some(a), Some(b)) => match (a.get("S"), b.get("S")) {
                    (Some(Value::String(a)), Some(Value::String(b))) => a.starts_with(b.as_str()),
                    _ => false,
                },
                _ => false,
            },
            Condition::Compare(a, op, b) => {
                // A missing attribute or two different types compare false, as in DynamoDB.
                let (Some(a), Some(b)) = (operand(a, ctx, item)?, operand(b, ctx, item)?) else {
                    return Ok(false);
                };
                let Some(order) = compare(&a, &b) else {
                    return Ok(false);
                };
                match *op {
                    "=" => order == CmpOrdering::Equal,
                    "<" => order == CmpOrdering::Less,
                    "<=" => order != CmpOrdering::Greater,
                    ">" => order == CmpOrdering::Greater,
                    ">=" => order != CmpOrdering::Less,
                    other => {
                        return Err(Refusal::invalid(format!(
                            "comparator {other} is not served by the stand-in"
                        )));
                    }
                }
            }
        })
    }
}

/// An operand's value: a placeholder's, or the item's attribute (`None` when missing).
fn operand(token: &Token, ctx: &Context, item: &Item) -> Result<Option<Value>, Refusal> {
    match token {
        Token::Value(v) => ctx.value(v).map(Some),
        path => Ok(item.get(&ctx.name(path)?).cloned()),
    }
}

/// The order of two values of one scalar type (`N` numerically, `S` by code point); `None`
/// for different or other types.
fn compare(a: &Value, b: &Value) -> Option<CmpOrdering> {
    if let (Some(Value::String(a)), Some(Value::String(b))) = (a.get("N"), b.get("N")) {
        let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
        return a.partial_cmp(&b);
    }
    if let (Some(Value::String(a)), Some(Value::String(b))) = (a.get("S"), b.get("S")) {
        return Some(a.cmp(b));
    }
    if let (Some(Value::Bool(a)), Some(Value::Bool(b))) = (a.get("BOOL"), b.get("BOOL")) {
        return (a == b).then_some(CmpOrdering::Equal);
    }
    None
}

/// One `SET` or `REMOVE` action of an update.
#[derive(Debug)]
enum Action {
    /// `path = operand`.
    Set(Token, Token),
    /// `path = if_not_exists(path2, operand)`.
    SetIfNotExists(Token, Token, Token),
    Remove(Token),
}

fn apply(actions: &[Action], ctx: &Context, item: &mut Item) -> Result<(), Refusal> {
    // Every operand reads the item as it was before the update, as in DynamoDB.
    let before = item.clone();
    for action in actions {
        match action {
            Action::Set(path, value) => {
                let v = operand(value, ctx, &before)?.ok_or_else(|| {
                    Refusal::invalid("an operand of the update refers to a missing attribute")
                })?;
                item.insert(ctx.name(path)?, v);
            }
            Action::SetIfNotExists(path, probe, value) => {
                let v = match operand(probe, ctx, &before)? {
                    Some(existing) => existing,
                    None => ctx.value(match value {
                        Token::Value(v) => v,
                        _ => return Err(Refusal::invalid("if_not_exists needs a value")),
                    })?,
                };
                item.insert(ctx.name(path)?, v);
            }
            Action::Remove(path) => {
                item.remove(&ctx.name(path)?);
            }
        }
    }
    Ok(())
}

fn parse_update(text: &str) -> Result<Vec<Action>, Refusal> {
    let mut p = Parser::new(text)?;
    let mut actions = Vec::new();
    while let Some(token) = p.next() {
        let clause = match token {
            Token::Word(w) => w.to_ascii_uppercase(),
            other => {
                return Err(Refusal::invalid(format!(
                    "expected SET or REMOVE, got {other:?}"
                )));
            }
        };
        loop {
            match clause.as_str() {
                "SET" => {
                    let path = p.path()?;
                    p.expect("=")?;
                    let first = p
                        .next()
                        .ok_or_else(|| Refusal::invalid("a SET lacks its value"))?;
                    let is_fn = matches!(&first, Token::Word(w) if w == "if_not_exists");
                    if is_fn {
                        p.expect("(")?;
                        let probe = p.path()?;
                        p.expect(",")?;
                        let value = p.value()?;
                        p.expect(")")?;
                        actions.push(Action::SetIfNotExists(path, probe, value));
                    } else if matches!(first, Token::Value(_) | Token::Name(_) | Token::Word(_)) {
                        actions.push(Action::Set(path, first));
                    } else {
                        return Err(Refusal::invalid(format!("unexpected {first:?} in a SET")));
                    }
                    if matches!(p.peek(), Some(Token::Sym("+" | "-"))) {
                        return Err(Refusal::invalid("arithmetic is not served by the stand-in"));
                    }
                }
                "REMOVE" => {
                    let path = p.path()?;
                    actions.push(Action::Remove(path));
                }
                other => {
                    return Err(Refusal::invalid(format!(
                        "{other} is not served by the stand-in"
                    )));
                }
            }
            if p.peek() == Some(&Token::Sym(",")) {
                p.next();
            } else {
                break;
            }
        }
    }
    if actions.is_empty() {
        return Err(Refusal::invalid("an empty UpdateExpression"));
    }
    Ok(actions)
}

/// The item's attributes named by a `ProjectionExpression`.
fn project(item: &Item, text: &str, ctx: &Context) -> Result<Item, Refusal> {
    let mut p = Parser::new(text)?;
    let mut out = Item::new();
    loop {
        let name = ctx.name(&p.path()?)?;
        if let Some(v) = item.get(&name) {
            out.insert(name, v.clone());
        }
        match p.next() {
            None => return Ok(out),
            Some(Token::Sym(",")) => {}
            Some(other) => return Err(Refusal::invalid(format!("unexpected {other:?}"))),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Self, Refusal> {
        Ok(Parser {
            tokens: tokens(text)?,
            at: 0,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, sym: &str) -> Result<(), Refusal> {
        match self.next() {
            Some(Token::Sym(s)) if s == sym => Ok(()),
            other => Err(Refusal::invalid(format!("expected {sym}, got {other:?}"))),
        }
    }

    /// A top-level attribute path (`#name` or a bare name); nested paths are refused.
    fn path(&mut self) -> Result<Token, Refusal> {
        let path = match self.next() {
            Some(t @ (Token::Name(_) | Token::Word(_))) => t,
            other => return Err(Refusal::invalid(format!("expected a path, got {other:?}"))),
        };
        if matches!(self.peek(), Some(Token::Sym("." | "["))) {
            return Err(Refusal::invalid(
                "nested paths are not served by the stand-in",
            ));
        }
        Ok(path)
    }

    fn value(&mut self) -> Result<Token, Refusal> {
        match self.next() {
            Some(t @ Token::Value(_)) => Ok(t),
            other => Err(Refusal::invalid(format!("expected a value, got {other:?}"))),
        }
    }

    /// The whole text as one condition.
    fn condition(&mut self) -> Result<Condition, Refusal> {
        let c = self.or()?;
        match self.peek() {
            None => Ok(c),
            Some(t) => Err(Refusal::invalid(format!("unexpected {t:?} in a condition"))),
        }
    }

    fn or(&mut self) -> Result<Condition, Refusal> {
        let mut c = self.and()?;
        while self.keyword("OR") {
            self.next();
            c = Condition::Or(Box::new(c), Box::new(self.and()?));
        }
        Ok(c)
    }

    fn and(&mut self) -> Result<Condition, Refusal> {
        let mut c = self.not()?;
        while self.keyword("AND") {
            self.next();
            c = Condition::And(Box::new(c), Box::new(self.not()?));
        }
        Ok(c)
    }

    fn not(&mut self) -> Result<Condition, Refusal> {
        if self.keyword("NOT") {
            self.next();
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, Refusal> {
        if self.peek() == Some(&Token::Sym("(")) {
            self.next();
            let c = self.or()?;
            self.expect(")")?;
            return Ok(c);
        }
        let function = match self.peek() {
            Some(Token::Word(w)) if self.tokens.get(self.at + 1) == Some(&Token::Sym("(")) => {
                Some(w.clone())
            }
            _ => None,
        };
        if let Some(function) = function {
            self.next();
            self.expect("(")?;
            let path = self.path()?;
            let c = match function.as_str() {
                "attribute_exists" => Condition::Exists(path, true),
                "attribute_not_exists" => Condition::Exists(path, false),
                "begins_with" => {
                    self.expect(",")?;
                    let prefix = self.operand()?;
                    Condition::BeginsWith(path, prefix)
                }
                other => {
                    return Err(Refusal::invalid(format!(
                        "function {other} is not served by the stand-in"
                    )));
                }
            };
            self.expect(")")?;
            return Ok(c);
        }
        let left = self.operand()?;
        let op = match self.next() {
            Some(Token::Sym(s @ ("=" | "<" | "<=" | ">" | ">="))) => s,
            other => {
                return Err(Refusal::invalid(format!(
                    "comparator {other:?} is not served by the stand-in"
                )));
            }
        };
        let right = self.operand()?;
        Ok(Condition::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Token, Refusal> {
        match self.peek() {
            Some(Token::Value(_)) => self.value(),
            _ => self.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Tables {
        Tables::new([("t", "k")])
    }

    fn s(v: &str) -> Value {
        json!({ "S": v })
    }

    fn n(v: u64) -> Value {
        json!({ "N": v.to_string() })
    }

    /// The idempotency claim: won when absent, refused with the old item when taken, won again
    /// once the old one expired or was released.
    #[test]
    fn a_conditional_put_is_won_once_and_returns_the_old_item_when_lost() {
        let t = tables();
        let claim = |owner: &str, now_s: u64| {
            json!({
                "TableName": "t",
                "Item": {"k": s("a"), "owner": s(owner), "exp": n(100), "state": s("busy")},
                "ConditionExpression":
                    "attribute_not_exists(#key) OR #expires <= :now_s OR #state = :released",
                "ExpressionAttributeNames": {"#key": "k", "#expires": "exp", "#state": "state"},
                "ExpressionAttributeValues": {":now_s": n(now_s), ":released": s("released")},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            })
        };
        assert_eq!(t.call("PutItem", &claim("one", 50)), Ok(json!({})));
        let lost = t.call("PutItem", &claim("two", 99)).unwrap_err();
        assert_eq!(lost.kind, "ConditionalCheckFailedException");
        assert_eq!(lost.item.unwrap()["owner"], s("one"));
        // Numbers compare as numbers: 100 <= 100 (a string compare would say the same, so
        // also 100 <= 1000, where it would not).
        assert!(t.call("PutItem", &claim("three", 100)).is_ok());
        assert!(t.call("PutItem", &claim("four", 99)).is_err());
        assert!(t.call("PutItem", &claim("five", 1000)).is_ok());
        assert_eq!(t.len("t"), 1);
    }

    /// The ledger's end write: `if_not_exists` keeps the first value, the end is recorded once,
    /// `ALL_NEW` returns the item, `REMOVE` drops attributes, a read sees all of it.
    #[test]
    fn updates_upsert_keep_first_values_record_an_end_once_and_read_back() {
        let t = tables();
        let start = json!({
            "TableName": "t",
            "Key": {"k": s("run")},
            "UpdateExpression": "SET #a0 = if_not_exists(#a0, :v0), #a1 = :v1, #a2 = :v2",
            "ExpressionAttributeNames": {"#a0": "started", "#a1": "max", "#a2": "open"},
            "ExpressionAttributeValues": {":v0": n(1), ":v1": n(60), ":v2": s("open")},
        });
        assert_eq!(t.call("UpdateItem", &start), Ok(json!({})));
        let mut again = start.clone();
        again["ExpressionAttributeValues"][":v0"] = n(2);
        t.call("UpdateItem", &again).unwrap();
        let end = json!({
            "TableName": "t",
            "Key": {"k": s("run")},
            "UpdateExpression": "SET #e = :e REMOVE #o",
            "ConditionExpression": "attribute_not_exists(#e)",
            "ExpressionAttributeNames": {"#e": "ended", "#o": "open"},
            "ExpressionAttributeValues": {":e": n(9)},
            "ReturnValues": "ALL_NEW",
        });
        let ended = t.call("UpdateItem", &end).unwrap();
        assert_eq!(ended["Attributes"]["started"], n(1));
        assert_eq!(ended["Attributes"]["ended"], n(9));
        assert!(ended["Attributes"].get("open").is_none());
        let twice = t.call("UpdateItem", &end).unwrap_err();
        assert_eq!(twice.kind, "ConditionalCheckFailedException");
        assert_eq!(twice.item, None);
        let read = json!({
            "TableName": "t",
            "Key": {"k": s("run")},
            "ProjectionExpression": "#m",
            "ExpressionAttributeNames": {"#m": "max"},
        });
        assert_eq!(
            t.call("GetItem", &read),
            Ok(json!({"Item": {"max": n(60)}}))
        );
        let missing = json!({"TableName": "t", "Key": {"k": s("none")}});
        assert_eq!(t.call("GetItem", &missing), Ok(json!({})));
    }

    /// The callback settle claim's shape: nested parentheses, AND over OR, numbers and strings.
    #[test]
    fn nested_conditions_evaluate_like_dynamodb() {
        let t = tables();
        let put = json!({
            "TableName": "t",
            "Item": {"k": s("cb"), "exp": n(100), "state": s("settling"), "until": n(5)},
        });
        t.call("PutItem", &put).unwrap();
        let settle = |now: u64| {
            json!({
                "TableName": "t",
                "Key": {"k": s("cb")},
                "ConditionExpression": "attribute_exists(#key) AND #expires > :now_s AND (#state = :waiting OR (#state = :settling AND (attribute_not_exists(#until) OR #until <= :now)))",
                "UpdateExpression": "SET #state = :settling, #until = :until",
                "ExpressionAttributeNames": {"#key": "k", "#expires": "exp", "#state": "state", "#until": "until"},
                "ExpressionAttributeValues": {":now_s": n(10), ":now": n(now), ":waiting": s("waiting"), ":settling": s("settling"), ":until": n(now + 10)},
            })
        };
        // The lease runs to 5: not free at 4, free at 5, then leased to 15.
        assert!(t.call("UpdateItem", &settle(4)).is_err());
        assert!(t.call("UpdateItem", &settle(5)).is_ok());
        assert!(t.call("UpdateItem", &settle(14)).is_err());
        // A missing attribute compares false, and NOT negates.
        let not = json!({
            "TableName": "t", "Key": {"k": s("cb")},
            "ConditionExpression": "NOT #x = :v",
            "UpdateExpression": "REMOVE #x",
            "ExpressionAttributeNames": {"#x": "absent"},
            "ExpressionAttributeValues": {":v": s("v")},
        });
        assert!(t.call("UpdateItem", &not).is_ok());
    }

    /// What the stand-in does not implement is refused, never treated as true.
    #[test]
    fn what_is_not_served_is_refused() {
        let t = tables();
        for (op, body) in [
            ("Query", json!({"TableName": "t"})),
            (
                "GetItem",
                json!({"TableName": "other", "Key": {"k": s("a")}}),
            ),
            ("GetItem", json!({"TableName": "t", "Key": {"x": s("a")}})),
            (
                "UpdateItem",
                json!({"TableName": "t", "Key": {"k": s("a")}, "UpdateExpression": "ADD #n :one",
                       "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":one": n(1)}}),
            ),
            (
                "UpdateItem",
                json!({"TableName": "t", "Key": {"k": s("a")}, "UpdateExpression": "SET #n = :v",
                       "ConditionExpression": "#n <> :v",
                       "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":v": n(1)}}),
            ),
            (
                "PutItem",
                json!({"TableName": "t", "Item": {"k": s("a")}, "ConditionExpression": "#n = :missing",
                       "ExpressionAttributeNames": {"#n": "n"}}),
            ),
        ] {
            let refused = t.call(op, &body).unwrap_err();
            assert_ne!(
                refused.kind, "ConditionalCheckFailedException",
                "{op} {body}"
            );
        }
        assert!(t.is_empty());
    }
}
