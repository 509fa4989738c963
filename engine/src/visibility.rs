//! Visibility queries: the common part of Temporal's list query language.
//!
//! - Fields: `WorkflowType`, `WorkflowId`, `RunId`, `ExecutionStatus`, `TaskQueue`,
//!   `StartTime`, `CloseTime`, `ExecutionTime`, `HistoryLength`, `RootWorkflowId`,
//!   `RootRunId`, `ParentWorkflowId`, `ParentRunId`, the predefined search
//!   attributes (such as `TemporalScheduledById`) and the namespace's custom ones; a name
//!   may be quoted with backticks. A name that is none of these is refused
//!   ([`Filter::resolve`]), and so is a value not of the field's type (`Size > '5'` for an
//!   `Int`; a `Bool` is compared with a bare `true` or `false`).
//! - Comparisons: `=`, `!=` (or `<>`), `<`, `<=`, `>`, `>=`; `[NOT] IN (v, …)`;
//!   `[NOT] BETWEEN a AND b`; `IS [NOT] NULL`; `STARTS_WITH 'prefix'`.
//! - Joined by `AND` and `OR` (`AND` binds tighter), grouped with parentheses.
//! - Times are RFC 3339 strings (`StartTime > '2026-01-01T00:00:00Z'`); a keyword-list
//!   search attribute equals a value when any of its items does; a text search attribute
//!   equals a value when it holds each of the value's words (case aside), as Temporal's
//!   full-text match. `STARTS_WITH` takes keywords only.
//!
//! An empty query matches every execution. `ORDER BY` is refused: listings are newest
//! first. A count may end with `GROUP BY ExecutionStatus` (the only grouping Temporal
//! offers), which a listing refuses. A query may nest parentheses [`MAX_DEPTH`] deep and hold [`MAX_TERMS`] conditions
//! and values: the parser and the matcher recurse only as deep as the parentheses go.

use std::{cmp::Ordering, time::SystemTime};

use tonic::Status;

use crate::{
    proto::{common::SearchAttributes, enums::WorkflowExecutionStatus},
    search_attributes::{self, Custom, Type, Value},
};

/// What a list query sees of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub(crate) workflow_type: &'a str,
    pub(crate) workflow_id: &'a str,
    pub(crate) run_id: &'a str,
    pub(crate) task_queue: &'a str,
    pub(crate) status: WorkflowExecutionStatus,
    pub(crate) start_time: SystemTime,
    /// When the run may first execute (after a start delay or backoff).
    pub(crate) execution_time: SystemTime,
    pub(crate) close_time: Option<SystemTime>,
    pub(crate) history_length: usize,
    pub(crate) search_attributes: Option<&'a SearchAttributes>,
    /// The run at the root of its tree of children, `(workflow id, run id)` (itself if it
    /// is no child).
    pub(crate) root: (&'a str, &'a str),
    /// The run that started it as a child, if one did.
    pub(crate) parent: Option<(&'a str, &'a str)>,
}

/// How deep parentheses may nest.
pub(crate) const MAX_DEPTH: usize = 32;
/// How many conditions (and values listed after `IN`'s first) a query may hold.
pub(crate) const MAX_TERMS: usize = 1000;

/// A parsed list query.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    /// `None`: the empty query.
    expr: Option<Expr>,
}

#[derive(Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare(Field, Op, Literal),
    In(Field, Vec<Literal>, bool),
    Between(Field, Literal, Literal, bool),
    IsNull(Field, bool),
    StartsWith(Field, String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Field {
    WorkflowType,
    WorkflowId,
    RunId,
    ExecutionStatus,
    TaskQueue,
    StartTime,
    CloseTime,
    ExecutionTime,
    HistoryLength,
    RootWorkflowId,
    RootRunId,
    ParentWorkflowId,
    ParentRunId,
    /// A search attribute, of its type (`Unspecified` until [`Filter::resolve`]).
    SearchAttribute(String, Type),
}

/// A value written in the query.
#[derive(Debug, Clone)]
enum Literal {
    Text(String),
    Number(f64),
    Time(SystemTime),
    /// A bare `true` or `false`.
    Bool(bool),
}

/// A run's value of a field.
#[derive(Debug)]
enum Actual {
    Text(String),
    Number(f64),
    Time(SystemTime),
    Bool(bool),
    List(Vec<Actual>),
    Null,
}

/// What a count groups its executions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupBy {
    ExecutionStatus,
}

impl Filter {
    /// The filter of a listing.
    pub(crate) fn parse(query: &str) -> Result<Self, Status> {
        match Self::parse_count(query)? {
            (filter, None) => Ok(filter),
            (_, Some(_)) => Err(invalid(
                query,
                "GROUP BY is only supported when counting executions",
            )),
        }
    }

    /// The filter of a count, and what it groups by.
    pub(crate) fn parse_count(query: &str) -> Result<(Self, Option<GroupBy>), Status> {
        let tokens = tokenize(query).map_err(|m| invalid(query, &m))?;
        let mut parser = Parser {
            tokens,
            at: 0,
            depth: 0,
            terms: 0,
        };
        let at_end = |parser: &Parser| parser.peek().is_none_or(|t| t.is_keyword("GROUP"));
        let expr = if at_end(&parser) {
            None
        } else {
            Some(parser.or().map_err(|m| invalid(query, &m))?)
        };
        let group = parser.group_by().map_err(|m| invalid(query, &m))?;
        if let Some(token) = parser.peek() {
            let message = if token.is_keyword("ORDER") {
                "ORDER BY is not supported: executions are listed newest first".to_owned()
            } else if group.is_some() {
                format!("unexpected {token} after GROUP BY")
            } else {
                format!("unexpected {token} after a complete condition")
            };
            return Err(invalid(query, &message));
        }
        Ok((Self { expr }, group))
    }

    /// The run's value of what `group` groups by, as a count's group value (a JSON
    /// string, as Temporal gives it).
    pub(crate) fn group_value(group: GroupBy, run: &Record<'_>) -> &'static str {
        match group {
            GroupBy::ExecutionStatus => status_name(run.status),
        }
    }

    pub(crate) fn matches(&self, run: &Record<'_>) -> bool {
        self.expr.as_ref().is_none_or(|e| e.matches(run))
    }

    /// Gives each search attribute the query names its type, as the namespace's
    /// `custom` attributes (or the system's) say, and checks the values it is compared
    /// with. Refuses a name that is not a search attribute, and a value or an operator
    /// its type does not take. `query` is for the message.
    pub(crate) fn resolve(&mut self, query: &str, custom: &Custom) -> Result<(), Status> {
        match &mut self.expr {
            None => Ok(()),
            Some(expr) => expr.resolve(custom).map_err(|m| invalid(query, &m)),
        }
    }
}

impl Expr {
    fn resolve(&mut self, custom: &Custom) -> Result<(), String> {
        match self {
            Self::And(all) | Self::Or(all) => all.iter_mut().try_for_each(|e| e.resolve(custom)),
            Self::Compare(field, _, literal) => {
                field.resolve(custom)?;
                field.typed(literal)
            }
            Self::In(field, values, _) => {
                field.resolve(custom)?;
                values.iter_mut().try_for_each(|v| field.typed(v))
            }
            Self::Between(field, low, high, _) => {
                field.resolve(custom)?;
                field.typed(low)?;
                field.typed(high)
            }
            Self::IsNull(field, _) => field.resolve(custom),
            Self::StartsWith(field, _) => {
                field.resolve(custom)?;
                match field {
                    Field::SearchAttribute(name, kind @ (Type::Text | Type::KeywordList)) => {
                        Err(format!(
                            "STARTS_WITH does not take {} search attribute `{name}`: only keywords",
                            search_attributes::type_name(*kind)
                        ))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    fn matches(&self, run: &Record<'_>) -> bool {
        match self {
            Self::And(all) => all.iter().all(|e| e.matches(run)),
            Self::Or(any) => any.iter().any(|e| e.matches(run)),
            Self::Compare(field, op, literal) => {
                let actual = field.of(run);
                if let (
                    Field::SearchAttribute(_, Type::Text),
                    Op::Eq | Op::Ne,
                    Literal::Text(words),
                ) = (field, op, literal)
                {
                    return matches!(&actual, Actual::Text(text)
                        if holds_words(text, words) == (*op == Op::Eq));
                }
                match op {
                    Op::Eq => actual.any(|a| compare(a, literal) == Some(Ordering::Equal)),
                    // SQL: a missing value is neither equal nor different.
                    Op::Ne => {
                        !matches!(actual, Actual::Null)
                            && !actual.any(|a| compare(a, literal) == Some(Ordering::Equal))
                    }
                    Op::Lt => actual.any(|a| compare(a, literal) == Some(Ordering::Less)),
                    Op::Le => actual.any(|a| compare(a, literal).is_some_and(Ordering::is_le)),
                    Op::Gt => actual.any(|a| compare(a, literal) == Some(Ordering::Greater)),
                    Op::Ge => actual.any(|a| compare(a, literal).is_some_and(Ordering::is_ge)),
                }
            }
            Self::In(field, values, negated) => {
                let actual = field.of(run);
                if matches!(actual, Actual::Null) {
                    return false;
                }
                let found = values
                    .iter()
                    .any(|v| actual.any(|a| compare(a, v) == Some(Ordering::Equal)));
                found != *negated
            }
            Self::Between(field, low, high, negated) => {
                let actual = field.of(run);
                if matches!(actual, Actual::Null) {
                    return false;
                }
                let within = actual.any(|a| {
                    compare(a, low).is_some_and(Ordering::is_ge)
                        && compare(a, high).is_some_and(Ordering::is_le)
                });
                within != *negated
            }
            Self::IsNull(field, negated) => matches!(field.of(run), Actual::Null) != *negated,
            Self::StartsWith(field, prefix) => field.of(run).any(|a| match a {
                Actual::Text(text) => text.starts_with(prefix.as_str()),
                _ => false,
            }),
        }
    }
}

impl Actual {
    /// Whether the value, or for a list any of its items, satisfies `test`.
    fn any(&self, mut test: impl FnMut(&Actual) -> bool) -> bool {
        match self {
            Self::List(items) => items.iter().any(test),
            Self::Null => false,
            single => test(single),
        }
    }
}

/// Whether `text` holds every word of `words`, case aside (a text search attribute's
/// match).
fn holds_words(text: &str, words: &str) -> bool {
    let split = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let held = split(text);
    split(words).iter().all(|w| held.contains(w))
}

/// Orders a run's value against a literal; `None` when they cannot be compared.
fn compare(actual: &Actual, literal: &Literal) -> Option<Ordering> {
    match (actual, literal) {
        (Actual::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Actual::Time(a), Literal::Time(b)) => Some(a.cmp(b)),
        (Actual::Time(a), Literal::Text(b)) => Some(a.cmp(&parse_time(b)?)),
        (Actual::Number(a), Literal::Number(b)) => a.partial_cmp(b),
        (Actual::Number(a), Literal::Text(b)) => a.partial_cmp(&b.parse().ok()?),
        (Actual::Text(a), Literal::Text(b)) => match (parse_time(a), parse_time(b)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(a.as_str().cmp(b.as_str())),
        },
        (Actual::Text(a), Literal::Number(b)) => a.parse::<f64>().ok()?.partial_cmp(b),
        (Actual::Text(a), Literal::Time(b)) => Some(parse_time(a)?.cmp(b)),
        _ => None,
    }
}

fn parse_time(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(SystemTime::from)
}

impl Field {
    fn named(name: &str) -> Self {
        match name {
            "WorkflowType" => Self::WorkflowType,
            "WorkflowId" => Self::WorkflowId,
            "RunId" => Self::RunId,
            "ExecutionStatus" => Self::ExecutionStatus,
            "TaskQueue" => Self::TaskQueue,
            "StartTime" => Self::StartTime,
            "CloseTime" => Self::CloseTime,
            "ExecutionTime" => Self::ExecutionTime,
            "HistoryLength" => Self::HistoryLength,
            "RootWorkflowId" => Self::RootWorkflowId,
            "RootRunId" => Self::RootRunId,
            "ParentWorkflowId" => Self::ParentWorkflowId,
            "ParentRunId" => Self::ParentRunId,
            other => Self::SearchAttribute(other.to_owned(), Type::Unspecified),
        }
    }

    /// A search attribute takes its type from the namespace's `custom` attributes or the
    /// system's; one that is neither is refused.
    fn resolve(&mut self, custom: &Custom) -> Result<(), String> {
        if let Self::SearchAttribute(name, kind) = self {
            *kind = custom.type_of(name).ok_or_else(|| {
                format!(
                    "`{name}` is not a search attribute of this namespace: add it with \
                     OperatorService AddSearchAttributes (`temporal operator search-attribute \
                     create --name {name} --type Keyword`)"
                )
            })?;
        }
        Ok(())
    }

    /// Checks (and converts) a literal compared with this search attribute, as its type
    /// takes it; other fields checked theirs when parsed.
    fn typed(&self, literal: &mut Literal) -> Result<(), String> {
        let Self::SearchAttribute(name, kind) = self else {
            return Ok(());
        };
        let refuse = |shown: String| {
            Err(format!(
                "{shown} is not a value of {} search attribute `{name}`{}",
                search_attributes::type_name(*kind),
                match kind {
                    Type::Int | Type::Double => ": compare it with a number",
                    Type::Bool => ": compare it with true or false, unquoted",
                    Type::Datetime =>
                        ": compare it with an RFC 3339 time, such as '2026-01-02T03:04:05Z'",
                    _ => ": compare it with a string",
                }
            ))
        };
        let converted = match (*kind, &*literal) {
            (Type::Int | Type::Double, Literal::Number(_)) => return Ok(()),
            (Type::Bool, Literal::Bool(_)) => return Ok(()),
            (Type::Datetime, Literal::Text(text)) => match parse_time(text) {
                Some(time) => Literal::Time(time),
                None => return refuse(format!("'{text}'")),
            },
            (Type::Keyword | Type::Text | Type::KeywordList, Literal::Text(_)) => return Ok(()),
            (Type::Keyword | Type::Text | Type::KeywordList, Literal::Bool(b)) => {
                Literal::Text(b.to_string())
            }
            (_, Literal::Text(text)) => return refuse(format!("'{text}'")),
            (_, Literal::Number(n)) => return refuse(n.to_string()),
            (_, Literal::Bool(b)) => return refuse(b.to_string()),
            (_, Literal::Time(_)) => return refuse("a time".to_owned()),
        };
        *literal = converted;
        Ok(())
    }

    fn is_time(&self) -> bool {
        matches!(
            self,
            Self::StartTime | Self::CloseTime | Self::ExecutionTime
        )
    }

    fn of(&self, run: &Record<'_>) -> Actual {
        match self {
            Self::WorkflowType => Actual::Text(run.workflow_type.to_owned()),
            Self::WorkflowId => Actual::Text(run.workflow_id.to_owned()),
            Self::RunId => Actual::Text(run.run_id.to_owned()),
            Self::TaskQueue => Actual::Text(run.task_queue.to_owned()),
            Self::ExecutionStatus => Actual::Text(status_name(run.status).to_owned()),
            Self::StartTime => Actual::Time(run.start_time),
            Self::ExecutionTime => Actual::Time(run.execution_time),
            Self::CloseTime => run.close_time.map_or(Actual::Null, Actual::Time),
            Self::HistoryLength => Actual::Number(run.history_length as f64),
            Self::RootWorkflowId => Actual::Text(run.root.0.to_owned()),
            Self::RootRunId => Actual::Text(run.root.1.to_owned()),
            Self::ParentWorkflowId => run
                .parent
                .map_or(Actual::Null, |p| Actual::Text(p.0.to_owned())),
            Self::ParentRunId => run
                .parent
                .map_or(Actual::Null, |p| Actual::Text(p.1.to_owned())),
            Self::SearchAttribute(name, kind) => search_attribute(run, name, *kind),
        }
    }

    /// The literal as this field compares it: times parsed, so that a bad one is refused.
    fn literal(&self, literal: Literal) -> Result<Literal, String> {
        match (self, literal) {
            (field, Literal::Text(text)) if field.is_time() => {
                parse_time(&text).map(Literal::Time).ok_or_else(|| {
                    format!("`{text}` is not an RFC 3339 time (such as `2026-01-02T03:04:05Z`)")
                })
            }
            (field, Literal::Number(_)) if field.is_time() => Err(
                "times are written as RFC 3339 strings, such as '2026-01-02T03:04:05Z'".to_owned(),
            ),
            (_, literal) => Ok(literal),
        }
    }
}

/// The run's search attribute `name`, decoded as its type; a value not of its type (set
/// before the attribute was registered as it is now) counts as none.
fn search_attribute(run: &Record<'_>, name: &str, kind: Type) -> Actual {
    let Some(payload) = run
        .search_attributes
        .and_then(|s| s.indexed_fields.get(name))
    else {
        return Actual::Null;
    };
    match Value::decode(payload, kind) {
        Ok(Value::Text(text)) => Actual::Text(text),
        Ok(Value::Number(n)) => Actual::Number(n),
        Ok(Value::Bool(b)) => Actual::Bool(b),
        Ok(Value::Time(t)) => Actual::Time(t),
        Ok(Value::List(items)) => Actual::List(items.into_iter().map(Actual::Text).collect()),
        Ok(Value::Null) | Err(_) => Actual::Null,
    }
}

fn status_name(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Running => "Running",
        WorkflowExecutionStatus::Completed => "Completed",
        WorkflowExecutionStatus::Failed => "Failed",
        WorkflowExecutionStatus::Canceled => "Canceled",
        WorkflowExecutionStatus::Terminated => "Terminated",
        WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
        WorkflowExecutionStatus::TimedOut => "TimedOut",
        _ => "Unspecified",
    }
}

fn invalid(query: &str, problem: &str) -> Status {
    // A status message travels in a header: a huge query is named by its start.
    const SHOWN: usize = 200;
    let shown = match query.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}… ({} bytes)", &query[..end], query.len()),
        None => query.to_owned(),
    };
    Status::invalid_argument(format!("invalid list query `{shown}`: {problem}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare word: a field name or a keyword.
    Word(String),
    /// A backtick-quoted field name.
    Name(String),
    Text(String),
    Number(f64),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

impl Token {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Self::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Word(w) => write!(f, "`{w}`"),
            Self::Name(n) => write!(f, "`` `{n}` ``"),
            Self::Text(t) => write!(f, "'{t}'"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Op(op) => write!(f, "`{op}`"),
            Self::Open => f.write_str("`(`"),
            Self::Close => f.write_str("`)`"),
            Self::Comma => f.write_str("`,`"),
        }
    }
}

fn tokenize(query: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '\'' | '"' | '`' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("{c} opened at {start} is never closed")),
                        Some((_, '\\')) => match chars.next() {
                            Some((_, escaped)) => text.push(escaped),
                            None => return Err(format!("{c} opened at {start} is never closed")),
                        },
                        Some((_, q)) if q == c => {
                            // A doubled quote stands for itself.
                            if chars.peek().is_some_and(|&(_, n)| n == c) {
                                chars.next();
                                text.push(c);
                            } else {
                                break;
                            }
                        }
                        Some((_, other)) => text.push(other),
                    }
                }
                tokens.push(if c == '`' {
                    Token::Name(text)
                } else {
                    Token::Text(text)
                });
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let next = chars.peek().map(|&(_, n)| n);
                let op = match (c, next) {
                    ('!', Some('=')) | ('<', Some('>')) => "!=",
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('=', _) => "=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err(format!("`!` at {start} is not an operator (use `!=`)")),
                };
                if op.len() == 2 {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut text = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' || (d == '-' && text.is_empty()) {
                        text.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let number = text
                    .parse()
                    .map_err(|_| format!("`{text}` at {start} is not a number"))?;
                tokens.push(Token::Number(number));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected `{other}` at {start}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// How many parentheses are open.
    depth: usize,
    /// Conditions and values so far.
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_keyword(keyword));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, what: &str, token: &Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == *token => Ok(()),
            Some(t) => Err(format!("expected {what}, found {t}")),
            None => Err(format!("expected {what} at the end")),
        }
    }

    /// A trailing `GROUP BY ExecutionStatus`, if there is one.
    fn group_by(&mut self) -> Result<Option<GroupBy>, String> {
        if !self.eat_keyword("GROUP") {
            return Ok(None);
        }
        if !self.eat_keyword("BY") {
            return Err("expected BY after GROUP".to_owned());
        }
        match self.next() {
            Some(Token::Word(w) | Token::Name(w)) if w == "ExecutionStatus" => {
                Ok(Some(GroupBy::ExecutionStatus))
            }
            Some(t) => Err(format!(
                "GROUP BY {t} is not supported: only ExecutionStatus (as on Temporal)"
            )),
            None => Err("expected a field after GROUP BY".to_owned()),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut any = vec![self.and()?];
        while self.eat_keyword("OR") {
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Or(any)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut all = vec![self.condition()?];
        while self.eat_keyword("AND") {
            all.push(self.condition()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        })
    }

    /// Counts one more condition or value against [`MAX_TERMS`].
    fn term(&mut self) -> Result<(), String> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!(
                "more than {MAX_TERMS} conditions and values: split the query"
            ));
        }
        Ok(())
    }

    fn condition(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!("parentheses nest more than {MAX_DEPTH} deep"));
            }
            let inner = self.or()?;
            self.expect("`)`", &Token::Close)?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.term()?;
        let field = match self.next() {
            Some(Token::Word(w)) if !is_reserved(&w) => Field::named(&w),
            Some(Token::Name(n)) => Field::named(&n),
            Some(other) => return Err(format!("expected a field name, found {other}")),
            None => return Err("expected a condition at the end".to_owned()),
        };
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            if !self.eat_keyword("NULL") {
                return Err("expected `NULL` after `IS`".to_owned());
            }
            return Ok(Expr::IsNull(field, negated));
        }
        if self.eat_keyword("STARTS_WITH") {
            return match self.value(&field)? {
                Literal::Text(prefix) => Ok(Expr::StartsWith(field, prefix)),
                _ => Err("STARTS_WITH takes a string".to_owned()),
            };
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("IN") {
            self.expect("`(` after IN", &Token::Open)?;
            let mut values = vec![self.value(&field)?];
            while self.peek() == Some(&Token::Comma) {
                self.at += 1;
                self.term()?;
                values.push(self.value(&field)?);
            }
            self.expect("`)` closing the IN list", &Token::Close)?;
            return Ok(Expr::In(field, values, negated));
        }
        if self.eat_keyword("BETWEEN") {
            let low = self.value(&field)?;
            if !self.eat_keyword("AND") {
                return Err("expected `AND` in BETWEEN".to_owned());
            }
            let high = self.value(&field)?;
            return Ok(Expr::Between(field, low, high, negated));
        }
        if negated {
            return Err("expected IN or BETWEEN after NOT".to_owned());
        }
        let op = match self.next() {
            Some(Token::Op(op)) => match op {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some(other) => {
                return Err(format!(
                    "expected a comparison (=, !=, <, <=, >, >=, IN, BETWEEN, IS NULL, STARTS_WITH), found {other}"
                ))
            }
            None => return Err("expected a comparison at the end".to_owned()),
        };
        let value = self.value(&field)?;
        Ok(Expr::Compare(field, op, value))
    }

    fn value(&mut self, field: &Field) -> Result<Literal, String> {
        let literal = match self.next() {
            Some(Token::Text(t)) => Literal::Text(t),
            Some(Token::Number(n)) => Literal::Number(n),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            // Temporal accepts bare words as values (`ExecutionStatus = Running`).
            Some(Token::Word(w)) if !is_reserved(&w) => Literal::Text(w),
            Some(other) => return Err(format!("expected a value, found {other}")),
            None => return Err("expected a value at the end".to_owned()),
        };
        field.literal(literal)
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "IS",
        "NULL",
        "STARTS_WITH",
        "ORDER",
        "GROUP",
        "BY",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Filter {
        Filter::parse(query).unwrap_or_else(|e| panic!("{query}: {}", e.message()))
    }

    fn error(query: &str) -> String {
        Filter::parse(query).unwrap_err().message().to_owned()
    }

    /// A running run of workflow `wf` with `search_attributes`.
    fn record(search_attributes: Option<&SearchAttributes>) -> Record<'_> {
        Record {
            workflow_type: "W",
            workflow_id: "wf",
            run_id: "r",
            task_queue: "q",
            status: WorkflowExecutionStatus::Running,
            start_time: SystemTime::UNIX_EPOCH,
            execution_time: SystemTime::UNIX_EPOCH,
            close_time: None,
            history_length: 3,
            search_attributes,
            root: ("wf", "r"),
            parent: None,
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse("WorkflowId = 'a' OR WorkflowId = 'b' AND WorkflowType = 'T'");
        assert!(
            matches!(f.expr, Some(Expr::Or(ref any)) if any.len() == 2),
            "{f:?}"
        );
        let f = parse("(WorkflowId = 'a' OR WorkflowId = 'b') AND WorkflowType = 'T'");
        assert!(
            matches!(f.expr, Some(Expr::And(ref all)) if all.len() == 2),
            "{f:?}"
        );
    }

    #[test]
    fn every_form_parses() {
        for query in [
            "",
            "  ",
            "WorkflowType = 'Greeting'",
            "WorkflowType=\"Greeting\"",
            "ExecutionStatus = Running",
            "ExecutionStatus != 'Completed' and TaskQueue = 'q'",
            "StartTime > '2026-01-01T00:00:00Z' AND StartTime <= '2026-12-31T23:59:59+01:00'",
            "StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-02-01T00:00:00Z'",
            "CloseTime IS NULL",
            "CloseTime is not null",
            "WorkflowId IN ('a', 'b', 'c')",
            "WorkflowId NOT IN ('a')",
            "WorkflowId STARTS_WITH 'order-'",
            "HistoryLength >= 10",
            "`Custom Field` = 'x'",
            "WorkflowId = 'it''s'",
            "WorkflowId <> 'a'",
        ] {
            parse(query);
        }
    }

    #[test]
    fn search_attributes_compare_as_their_registered_types() {
        let mut custom = Custom::default();
        let added = [
            ("Size", Type::Int),
            ("Ok", Type::Bool),
            ("When", Type::Datetime),
            ("Note", Type::Text),
            ("Tags", Type::KeywordList),
        ]
        .map(|(n, t)| (n.to_owned(), t as i32))
        .into();
        custom.add(&added, 10).unwrap();
        let json = |v: serde_json::Value| crate::proto::common::Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(&v).unwrap(),
            ..Default::default()
        };
        let attributes = SearchAttributes {
            indexed_fields: [
                ("Size", json(serde_json::json!(10))),
                ("Ok", json(serde_json::json!(true))),
                ("When", json(serde_json::json!("2026-03-01T00:00:00+01:00"))),
                ("Note", json(serde_json::json!("Hello, capstan World"))),
                ("Tags", json(serde_json::json!(["x", "y"]))),
            ]
            .map(|(n, p)| (n.to_owned(), p))
            .into(),
        };
        let record = record(Some(&attributes));
        let matches = |query: &str| {
            let mut filter = parse(query);
            filter
                .resolve(query, &custom)
                .map(|()| filter.matches(&record))
                .map_err(|e| e.message().to_owned())
        };
        for (query, expected) in [
            ("Size > 9", true),
            // As a number, not as text ("10" < "9").
            ("Size < 9", false),
            ("Ok = true", true),
            ("Ok = FALSE", false),
            ("When > '2026-02-28T22:30:00Z'", true),
            ("When < '2026-02-28T22:30:00Z'", false),
            ("Note = 'world hello'", true),
            ("Note = 'hello there'", false),
            ("Note != 'capstan'", false),
            ("Tags = 'y'", true),
            ("Tags IN ('z', 'x')", true),
        ] {
            assert_eq!(matches(query), Ok(expected), "{query}");
        }
        for (query, refusal) in [
            (
                "Nope = 'x'",
                "`Nope` is not a search attribute of this namespace",
            ),
            (
                "Size > '9'",
                "'9' is not a value of Int search attribute `Size`",
            ),
            (
                "Ok = 'true'",
                "'true' is not a value of Bool search attribute `Ok`",
            ),
            (
                "When > 'soon'",
                "'soon' is not a value of Datetime search attribute `When`",
            ),
            (
                "Tags STARTS_WITH 'x'",
                "STARTS_WITH does not take KeywordList",
            ),
            ("Note STARTS_WITH 'H'", "STARTS_WITH does not take Text"),
        ] {
            let message = matches(query).unwrap_err();
            assert!(message.contains(refusal), "{query}: {message}");
        }
    }

    #[test]
    fn a_count_groups_by_execution_status_and_a_listing_refuses_to() {
        let count = |query: &str| {
            Filter::parse_count(query)
                .map(|(filter, group)| (filter.expr.is_some(), group))
                .map_err(|e| e.message().to_owned())
        };
        assert_eq!(
            count("GROUP BY ExecutionStatus"),
            Ok((false, Some(GroupBy::ExecutionStatus)))
        );
        assert_eq!(
            count("WorkflowType = 'W' group by `ExecutionStatus`"),
            Ok((true, Some(GroupBy::ExecutionStatus)))
        );
        assert_eq!(count("WorkflowType = 'W'"), Ok((true, None)));
        let wrong = count("GROUP BY WorkflowType").unwrap_err();
        assert!(wrong.contains("only ExecutionStatus"), "{wrong}");
        let trailing = count("GROUP BY ExecutionStatus AND x = 1").unwrap_err();
        assert!(trailing.contains("after GROUP BY"), "{trailing}");
        assert!(error("GROUP BY ExecutionStatus").contains("only supported when counting"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            error("StartTime > 'yesterday'").contains("`yesterday` is not an RFC 3339 time"),
            "{}",
            error("StartTime > 'yesterday'")
        );
        assert!(error("WorkflowId = 'a' ORDER BY StartTime").contains("ORDER BY is not supported"));
        assert!(error("WorkflowId = ").contains("expected a value at the end"));
        assert!(error("WorkflowId = 'a").contains("never closed"));
        assert!(error("WorkflowId 'a'").contains("expected a comparison"));
        assert!(error("(WorkflowId = 'a'").contains("expected `)`"));
        assert!(error("WorkflowId NOT = 'a'").contains("IN or BETWEEN after NOT"));
        assert!(error("StartTime > 5").contains("RFC 3339 strings"));
    }

    #[test]
    fn hostile_queries_are_refused_without_deep_recursion() {
        // Run on a small stack: a parser or matcher that recursed per term or per
        // parenthesis would overflow it.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let nested = format!("{}WorkflowId = 'a'{}", "(".repeat(5000), ")".repeat(5000));
                assert!(error(&nested).contains("nest more than 32 deep"));
                let chain = vec!["WorkflowId = 'a'"; 30_000].join(" AND ");
                let message = error(&chain);
                assert!(message.contains("more than 1000 conditions"), "{message}");
                assert!(message.len() < 600, "the message echoes the whole query");
                let values = format!("WorkflowId IN ({})", vec!["'a'"; 2000].join(","));
                assert!(error(&values).contains("more than 1000"));
                // At the limits, a query parses and matches.
                let deep = format!("{}WorkflowId = 'wf'{}", "(".repeat(32), ")".repeat(32));
                assert!(Filter::parse(&deep).is_ok());
                let long = vec!["WorkflowId = 'wf'"; 1000].join(" AND ");
                let filter = Filter::parse(&long).unwrap();
                let record = record(None);
                assert!(filter.matches(&record));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_child_is_found_by_its_root_and_its_parent() {
        let custom = Custom::default();
        let child = Record {
            root: ("top", "top-run"),
            parent: Some(("mid", "mid-run")),
            ..record(None)
        };
        let top = record(None);
        let matches = |query: &str, run: &Record<'_>| {
            let mut filter = parse(query);
            filter.resolve(query, &custom).unwrap();
            filter.matches(run)
        };
        for (query, child_matches, top_matches) in [
            (
                "RootWorkflowId = 'top' AND RootRunId = 'top-run'",
                true,
                false,
            ),
            ("ParentWorkflowId = 'mid'", true, false),
            ("ParentRunId = 'mid-run'", true, false),
            ("ParentWorkflowId IS NULL", false, true),
            // A run that is no child is its own root.
            ("RootWorkflowId = 'wf' AND RootRunId = 'r'", false, true),
        ] {
            assert_eq!(matches(query, &child), child_matches, "{query}");
            assert_eq!(matches(query, &top), top_matches, "{query}");
        }
    }
}
