//! The HTTP API's routes: the `google.api.http` bindings of the services' methods, read from
//! their descriptors (each method's binding and its `additional_bindings`), matched against
//! a request's method and path.

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

/// Every binding of the services' methods.
pub(crate) struct Routes {
    routes: Vec<Route>,
}

/// One binding: an HTTP method and path template, and the RPC it calls.
#[derive(Clone)]
pub(crate) struct Route {
    /// `GET`, `POST`, …
    pub(crate) verb: http::Method,
    /// The path's segments.
    template: Vec<Segment>,
    /// Where the request body goes: `*` (the whole request), a field's name, or nowhere.
    pub(crate) body: Body,
    /// The RPC.
    pub(crate) method: MethodDescriptor,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    /// Matches itself.
    Literal(String),
    /// Matches any one segment, which becomes the field at this dotted path.
    Field(String),
}

/// Where a binding takes its body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body {
    /// No body: every field comes from the path and the query.
    None,
    /// `body: "*"`: the body is the request message (less what the path binds).
    Whole,
    /// `body: "field"`: the body is that field of the request.
    Field(String),
}

/// A request's route and what its path bound.
pub(crate) struct Matched<'a> {
    pub(crate) route: &'a Route,
    /// `(dotted field path, percent-decoded segment)` for each path variable.
    pub(crate) bound: Vec<(String, String)>,
}

/// Why no route takes a request.
#[derive(Debug, PartialEq)]
pub(crate) enum Unmatched {
    /// No binding has this path.
    Path,
    /// Bindings have this path, with these methods only.
    Method(Vec<http::Method>),
    /// A path segment is not valid percent-encoded UTF-8.
    Encoding(String),
}

impl Routes {
    /// The bindings of every method of `services` (full names) in `pool`.
    ///
    /// # Panics
    /// If a binding is malformed: the descriptors are the engine's own, built in.
    pub(crate) fn new(pool: &DescriptorPool, services: &[&str]) -> Routes {
        let http = pool
            .get_extension_by_name("google.api.http")
            .expect("the descriptors define google.api.http");
        let mut routes = Vec::new();
        for name in services {
            let service = pool
                .get_service_by_name(name)
                .unwrap_or_else(|| panic!("{name} is not in the descriptors"));
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&http) {
                    continue;
                }
                if let Value::Message(rule) = options.get_extension(&http).as_ref() {
                    add_rule(&mut routes, &method, rule);
                }
            }
        }
        // The more literal binding wins where two match (`…/workflows/{id}` against
        // `…/workflows/execute-multi-operation`): literals sort first, segment by segment.
        routes.sort_by(|a, b| {
            let rank = |r: &Route| {
                r.template
                    .iter()
                    .map(|s| matches!(s, Segment::Field(_)))
                    .collect::<Vec<_>>()
            };
            rank(a).cmp(&rank(b))
        });
        Routes { routes }
    }

    /// The route for `verb` and `path` (the URI's path, still percent-encoded).
    pub(crate) fn find(&self, verb: &http::Method, path: &str) -> Result<Matched<'_>, Unmatched> {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        let mut methods: Vec<http::Method> = Vec::new();
        for route in &self.routes {
            let Some(bound) = route.bind(&segments)? else {
                continue;
            };
            if route.verb == verb {
                return Ok(Matched { route, bound });
            }
            if !methods.contains(&route.verb) {
                methods.push(route.verb.clone());
            }
        }
        if methods.is_empty() {
            Err(Unmatched::Path)
        } else {
            Err(Unmatched::Method(methods))
        }
    }

    /// Every route, as `(verb, template, RPC's full name)`.
    #[cfg(test)]
    pub(crate) fn list(&self) -> impl Iterator<Item = (&http::Method, String, &str)> {
        self.routes
            .iter()
            .map(|r| (&r.verb, r.template(), r.method.full_name()))
    }
}

impl Route {
    /// What the path's segments bind, or `None` if this route does not take them.
    fn bind(&self, segments: &[&str]) -> Result<Option<Vec<(String, String)>>, Unmatched> {
        if segments.len() != self.template.len() {
            return Ok(None);
        }
        let mut bound = Vec::new();
        for (segment, template) in segments.iter().zip(&self.template) {
            match template {
                Segment::Literal(literal) if literal == segment => {}
                Segment::Literal(_) => return Ok(None),
                Segment::Field(_) if segment.is_empty() => return Ok(None),
                Segment::Field(field) => bound.push((field.clone(), percent_decode(segment)?)),
            }
        }
        Ok(Some(bound))
    }

    /// The path template as the proto writes it.
    #[cfg(test)]
    pub(crate) fn template(&self) -> String {
        self.template
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => format!("/{l}"),
                Segment::Field(f) => format!("/{{{f}}}"),
            })
            .collect()
    }
}

/// Adds a `google.api.HttpRule` and its additional bindings.
fn add_rule(routes: &mut Vec<Route>, method: &MethodDescriptor, rule: &DynamicMessage) {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let verbs = [
        ("get", http::Method::GET),
        ("post", http::Method::POST),
        ("put", http::Method::PUT),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ];
    if let Some((verb, path)) = verbs
        .iter()
        .find_map(|(name, verb)| text(name).map(|path| (verb.clone(), path)))
    {
        let body = match text("body").as_deref() {
            None => Body::None,
            Some("*") => Body::Whole,
            Some(field) => Body::Field(field.to_owned()),
        };
        routes.push(Route {
            verb,
            template: parse_template(&path),
            body,
            method: method.clone(),
        });
    }
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
        for binding in more {
            if let Value::Message(binding) = binding {
                add_rule(routes, method, binding);
            }
        }
    }
}

/// `/api/v1/namespaces/{namespace}/workflows` as segments.
///
/// # Panics
/// On a variable with a pattern (`{name=…}`), which no binding of the services has.
fn parse_template(path: &str) -> Vec<Segment> {
    path.trim_start_matches('/')
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(field) => {
                    assert!(!field.contains('='), "unsupported path pattern {path}");
                    Segment::Field(field.to_owned())
                }
                None => Segment::Literal(segment.to_owned()),
            },
        )
        .collect()
}

/// A path segment's text: `%2F` is `/`, `+` stays `+`.
fn percent_decode(segment: &str) -> Result<String, Unmatched> {
    String::from_utf8(
        unescape(segment, false).ok_or_else(|| Unmatched::Encoding(segment.to_owned()))?,
    )
    .map_err(|_| Unmatched::Encoding(segment.to_owned()))
}

/// The bytes `text` escapes with `%XX` (and, if `plus_is_space`, `+` for a space, as a
/// form or query does); `None` if an escape is not two hex digits.
pub(crate) fn unescape(text: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
                i += 3;
                continue;
            }
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    Some(out)
}
