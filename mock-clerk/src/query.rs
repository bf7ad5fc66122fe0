//! Query parameters of the Backend API's list endpoints, parsed like Clerk: every parameter
//! of Clerk's OpenAPI spec is honoured, and anything else — an unknown name, a malformed
//! value, a combination Clerk refuses — is a 422 in Clerk's error JSON, never silently
//! ignored (an ignored filter returns every user, which hides the very bug a test looks for).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::json;

use crate::error::ClerkApiError;
use crate::model::User;

/// The most values an array filter accepts (`Accepts up to 100 …` in Clerk's spec).
pub const MAX_FILTER_VALUES: usize = 100;

/// Parsed `name=value` pairs of one request, checked against the parameters the endpoint has.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

fn unknown_param(name: &str) -> ClerkApiError {
    ClerkApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_unknown",
        "is unknown",
        &format!("{name} is not a valid parameter for this request."),
    )
    .with_meta(json!({ "param_name": name }))
}

fn invalid_value(name: &str, long_message: &str) -> ClerkApiError {
    ClerkApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid", "is invalid", long_message)
        .with_meta(json!({ "param_name": name }))
}

fn invalid_format(name: &str, long_message: &str) -> ClerkApiError {
    ClerkApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid", "is invalid", long_message)
        .with_meta(json!({ "param_name": name }))
}

impl Params {
    /// Parses a raw query string; `name[]` is read as `name`. Names outside `allowed` are a
    /// 422 `form_param_unknown`.
    ///
    /// # Errors
    /// The first unknown parameter.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ClerkApiError> {
        let mut pairs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned() {
            let name = k.strip_suffix("[]").unwrap_or(&k).to_string();
            if !allowed.contains(&name.as_str()) {
                return Err(unknown_param(&name));
            }
            pairs.push((name, v));
        }
        Ok(Self { pairs })
    }

    /// Every value of `name` (repeated `name=a&name=b`, also comma-free `name[]=`).
    ///
    /// # Errors
    /// More than [`MAX_FILTER_VALUES`] values.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ClerkApiError> {
        let values: Vec<String> = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
        if values.len() > MAX_FILTER_VALUES {
            return Err(invalid_value(name, &format!("{name} accepts at most {MAX_FILTER_VALUES} values, got {}", values.len())));
        }
        Ok(values)
    }

    /// The first value of `name` (Clerk keeps the first of repeated single-valued parameters).
    #[must_use]
    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// An integer parameter.
    ///
    /// # Errors
    /// A value that is not an integer.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ClerkApiError> {
        self.one(name).map(|v| v.parse::<i64>().map_err(|_| invalid_format(name, &format!("{name} must be an integer, got '{v}'")))).transpose()
    }

    /// A boolean parameter (`true`/`false`).
    ///
    /// # Errors
    /// Anything else.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ClerkApiError> {
        self.one(name)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid_format(name, &format!("{name} must be true or false, got '{v}'"))),
            })
            .transpose()
    }

    /// `limit` (1..=500, default 10) and `offset` (>= 0, default 0).
    ///
    /// # Errors
    /// Out of range or not integers.
    pub fn limit_offset(&self) -> Result<(usize, usize), ClerkApiError> {
        let limit = self.int("limit")?.unwrap_or(10);
        if !(1..=500).contains(&limit) {
            return Err(invalid_value("limit", &format!("limit must be between 1 and 500, got {limit}")));
        }
        // The spec bounds `offset` below only: an offset past anything an integer holds is
        // past every item (an empty page), not an error.
        let offset = match self.one("offset") {
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v.parse::<usize>().unwrap_or(usize::MAX),
            _ => {
                let offset = self.int("offset")?.unwrap_or(0);
                usize::try_from(offset).map_err(|_| invalid_value("offset", &format!("offset must be greater or equal to 0, got {offset}")))?
            }
        };
        Ok((usize::try_from(limit).unwrap_or(10), offset))
    }
}

/// A `+`/`-` id filter: `+id` (or a bare id) includes, `-id` excludes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdFilter {
    /// Only these (empty: no restriction).
    pub include: BTreeSet<String>,
    /// Never these.
    pub exclude: BTreeSet<String>,
}

impl IdFilter {
    /// Reads `+id`/`-id`/`id` values.
    #[must_use]
    pub fn parse(values: Vec<String>) -> Self {
        let mut f = Self::default();
        for v in values {
            if let Some(id) = v.strip_prefix('-') {
                f.exclude.insert(id.to_string());
            } else {
                f.include.insert(v.strip_prefix('+').unwrap_or(&v).to_string());
            }
        }
        f
    }

    /// Whether the filter restricts anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether one value passes.
    #[must_use]
    pub fn admits(&self, value: Option<&str>) -> bool {
        match value {
            Some(v) => (self.include.is_empty() || self.include.contains(v)) && !self.exclude.contains(v),
            None => self.include.is_empty(),
        }
    }

    /// Whether a set of values (e.g. a user's organisations) passes: one included, none excluded.
    #[must_use]
    pub fn admits_any<'a>(&self, mut values: impl Iterator<Item = &'a str> + Clone) -> bool {
        (self.include.is_empty() || values.clone().any(|v| self.include.contains(v))) && !values.any(|v| self.exclude.contains(v))
    }
}

/// Every filter of `GET /v1/users` and `GET /v1/users/count`.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Exact email addresses (case-insensitive).
    pub email_address: Vec<String>,
    /// Exact phone numbers.
    pub phone_number: Vec<String>,
    /// `+`/`-` external ids.
    pub external_id: IdFilter,
    /// Exact usernames (case-insensitive, as Clerk stores them lowercased).
    pub username: Vec<String>,
    /// Web3 wallet addresses (mock users have none, so a non-empty list matches nobody).
    pub web3_wallet: Vec<String>,
    /// `+`/`-` user ids.
    pub user_id: IdFilter,
    /// `+`/`-` organisation ids the user is a member of.
    pub organization_id: IdFilter,
    /// Partial match on emails, phones, usernames, ids, first and last names.
    pub query: Option<String>,
    /// Partial match on emails.
    pub email_address_query: Option<String>,
    /// Partial match on phone numbers.
    pub phone_number_query: Option<String>,
    /// Partial match on the username.
    pub username_query: Option<String>,
    /// Partial match on first or last name (or both, space-separated).
    pub name_query: Option<String>,
    /// Banned or not.
    pub banned: Option<bool>,
    /// `last_active_at` strictly before (ms).
    pub last_active_at_before: Option<i64>,
    /// `last_active_at` strictly after (ms).
    pub last_active_at_after: Option<i64>,
    /// `last_active_at` at or after (ms).
    pub last_active_at_since: Option<i64>,
    /// `created_at` strictly before (ms).
    pub created_at_before: Option<i64>,
    /// `created_at` strictly after (ms).
    pub created_at_after: Option<i64>,
    /// `last_sign_in_at` strictly before (ms).
    pub last_sign_in_at_before: Option<i64>,
    /// `last_sign_in_at` strictly after (ms).
    pub last_sign_in_at_after: Option<i64>,
    /// OAuth provider with `provider_user_id` (mock users have no external accounts).
    pub provider: Option<(String, Vec<String>)>,
}

/// The filter parameters shared by `GET /v1/users` and `GET /v1/users/count`.
pub const USER_FILTER_PARAMS: &[&str] = &[
    "email_address",
    "phone_number",
    "external_id",
    "username",
    "web3_wallet",
    "user_id",
    "organization_id",
    "query",
    "email_address_query",
    "phone_number_query",
    "username_query",
    "name_query",
    "banned",
    "last_active_at_before",
    "last_active_at_after",
    "last_active_at_since",
    "created_at_before",
    "created_at_after",
    "last_sign_in_at_before",
    "last_sign_in_at_after",
    "provider",
    "provider_user_id",
];

/// The parameters of `GET /v1/users` beyond its filters: paging and ordering.
pub const USER_PAGING_PARAMS: &[&str] = &["limit", "offset", "starting_after", "order_by"];

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn before(value: Option<i64>, bound: Option<i64>) -> bool {
    bound.is_none_or(|b| value.is_some_and(|v| v < b))
}

fn after(value: Option<i64>, bound: Option<i64>) -> bool {
    bound.is_none_or(|b| value.is_some_and(|v| v > b))
}

impl UserFilter {
    /// Reads the filters from `params`.
    ///
    /// # Errors
    /// Malformed values, too many values, `provider` without `provider_user_id` or the reverse.
    pub fn from_params(params: &Params) -> Result<Self, ClerkApiError> {
        let text = |name: &str| params.one(name).map(str::to_string);
        // An empty `provider=` is no provider (a form field left blank), not an unpaired one.
        let provider = match (params.one("provider").filter(|p| !p.is_empty()), params.list("provider_user_id")?) {
            (None, ids) if ids.is_empty() => None,
            (Some(p), ids) if !ids.is_empty() => Some((p.to_string(), ids)),
            (Some(_), _) => return Err(invalid_value("provider_user_id", "provider must be used in combination with provider_user_id")),
            (None, _) => return Err(invalid_value("provider", "provider_user_id must be used in combination with provider")),
        };
        Ok(Self {
            email_address: params.list("email_address")?,
            phone_number: params.list("phone_number")?,
            external_id: IdFilter::parse(params.list("external_id")?),
            username: params.list("username")?,
            web3_wallet: params.list("web3_wallet")?,
            user_id: IdFilter::parse(params.list("user_id")?),
            organization_id: IdFilter::parse(params.list("organization_id")?),
            query: text("query"),
            email_address_query: text("email_address_query"),
            phone_number_query: text("phone_number_query"),
            username_query: text("username_query"),
            name_query: text("name_query"),
            banned: params.bool("banned")?,
            last_active_at_before: params.int("last_active_at_before")?,
            last_active_at_after: params.int("last_active_at_after")?,
            last_active_at_since: params.int("last_active_at_since")?,
            created_at_before: params.int("created_at_before")?,
            created_at_after: params.int("created_at_after")?,
            last_sign_in_at_before: params.int("last_sign_in_at_before")?,
            last_sign_in_at_after: params.int("last_sign_in_at_after")?,
            provider,
        })
    }

    /// Whether `u`, a member of `orgs`, passes every filter.
    #[must_use]
    pub fn matches(&self, u: &User, orgs: &[String]) -> bool {
        let emails = || u.email_addresses.iter().map(|e| e.email_address.as_str());
        let phones = || u.phone_numbers.iter().map(|p| p.phone_number.as_str());
        let names = [u.first_name.as_deref(), u.last_name.as_deref()];
        let full_name = names.iter().flatten().copied().collect::<Vec<_>>().join(" ");
        (self.email_address.is_empty() || emails().any(|e| self.email_address.iter().any(|q| q.eq_ignore_ascii_case(e))))
            && (self.phone_number.is_empty() || phones().any(|p| self.phone_number.iter().any(|q| q == p)))
            && self.external_id.admits(u.external_id.as_deref())
            && (self.username.is_empty() || u.username.as_deref().is_some_and(|n| self.username.iter().any(|q| q.eq_ignore_ascii_case(n))))
            && self.web3_wallet.is_empty()
            && self.user_id.admits(Some(&u.id))
            && self.organization_id.admits_any(orgs.iter().map(String::as_str))
            && self.query.as_ref().is_none_or(|q| {
                let fields = [u.first_name.as_deref(), u.last_name.as_deref(), u.username.as_deref(), Some(u.id.as_str()), u.external_id.as_deref()];
                fields.iter().flatten().any(|f| contains_ci(f, q)) || emails().any(|e| contains_ci(e, q)) || phones().any(|p| p.contains(q.as_str()))
            })
            && self.email_address_query.as_ref().is_none_or(|q| emails().any(|e| contains_ci(e, q)))
            && self.phone_number_query.as_ref().is_none_or(|q| phones().any(|p| contains_ci(p, q)))
            && self.username_query.as_ref().is_none_or(|q| u.username.as_deref().is_some_and(|n| contains_ci(n, q)))
            && self.name_query.as_ref().is_none_or(|q| contains_ci(&full_name, q))
            && self.banned.is_none_or(|b| u.banned == b)
            && before(u.last_active_at, self.last_active_at_before)
            && after(u.last_active_at, self.last_active_at_after)
            && self.last_active_at_since.is_none_or(|b| u.last_active_at.is_some_and(|v| v >= b))
            && before(Some(u.created_at), self.created_at_before)
            && after(Some(u.created_at), self.created_at_after)
            && before(u.last_sign_in_at, self.last_sign_in_at_before)
            && after(u.last_sign_in_at, self.last_sign_in_at_after)
            && self.provider.is_none()
    }
}

/// The fields `order_by` of `GET /v1/users` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserOrderField {
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// The primary email address.
    EmailAddress,
    /// The primary web3 wallet (mock users have none: ties, broken by id).
    Web3Wallet,
    /// `first_name`.
    FirstName,
    /// `last_name`.
    LastName,
    /// The primary phone number.
    PhoneNumber,
    /// `username`.
    Username,
    /// `last_active_at`.
    LastActiveAt,
    /// `last_sign_in_at`.
    LastSignInAt,
}

/// `order_by` of `GET /v1/users`: a field and a direction (default `-created_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserOrder {
    /// The field.
    pub field: UserOrderField,
    /// Descending (`-`).
    pub descending: bool,
}

impl Default for UserOrder {
    fn default() -> Self {
        Self { field: UserOrderField::CreatedAt, descending: true }
    }
}

impl UserOrder {
    /// Parses `order_by` (`+`/`-` prefix, `+` implied).
    ///
    /// # Errors
    /// A field Clerk does not order by.
    pub fn parse(value: Option<&str>) -> Result<Self, ClerkApiError> {
        // An empty `order_by=` is the default order, as an absent one.
        let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(Self::default()) };
        let (descending, name) = match value.as_bytes().first() {
            Some(b'-') => (true, &value[1..]),
            // A literal `+` arrives as a space when not percent-encoded.
            Some(b'+' | b' ') => (false, &value[1..]),
            _ => (false, value),
        };
        let field = match name {
            "created_at" => UserOrderField::CreatedAt,
            "updated_at" => UserOrderField::UpdatedAt,
            "email_address" => UserOrderField::EmailAddress,
            "web3wallet" => UserOrderField::Web3Wallet,
            "first_name" => UserOrderField::FirstName,
            "last_name" => UserOrderField::LastName,
            "phone_number" => UserOrderField::PhoneNumber,
            "username" => UserOrderField::Username,
            "last_active_at" => UserOrderField::LastActiveAt,
            "last_sign_in_at" => UserOrderField::LastSignInAt,
            _ => {
                return Err(invalid_value(
                    "order_by",
                    &format!("order_by '{value}' is not supported: use created_at, updated_at, email_address, web3wallet, first_name, last_name, phone_number, username, last_active_at or last_sign_in_at, optionally prefixed with + or -"),
                ))
            }
        };
        Ok(Self { field, descending })
    }

    /// Compares two users in this order; users without the value sort last, ties by id.
    #[must_use]
    pub fn compare(&self, a: &User, b: &User) -> Ordering {
        fn text(u: &User, f: UserOrderField) -> Option<String> {
            match f {
                UserOrderField::EmailAddress => u.primary_email().map(str::to_lowercase),
                UserOrderField::FirstName => u.first_name.as_deref().map(str::to_lowercase),
                UserOrderField::LastName => u.last_name.as_deref().map(str::to_lowercase),
                UserOrderField::PhoneNumber => u.primary_phone().map(str::to_string),
                UserOrderField::Username => u.username.as_deref().map(str::to_lowercase),
                _ => None,
            }
        }
        fn number(u: &User, f: UserOrderField) -> Option<i64> {
            match f {
                UserOrderField::CreatedAt => Some(u.created_at),
                UserOrderField::UpdatedAt => Some(u.updated_at),
                UserOrderField::LastActiveAt => u.last_active_at,
                UserOrderField::LastSignInAt => u.last_sign_in_at,
                _ => None,
            }
        }
        let direct = |x: Ordering| if self.descending { x.reverse() } else { x };
        let by_value = match (number(a, self.field), number(b, self.field), text(a, self.field), text(b, self.field)) {
            (Some(x), Some(y), _, _) => direct(x.cmp(&y)),
            (_, _, Some(x), Some(y)) => direct(x.cmp(&y)),
            (Some(_), None, _, _) | (_, _, Some(_), None) => Ordering::Less,
            (None, Some(_), _, _) | (_, _, None, Some(_)) => Ordering::Greater,
            _ => Ordering::Equal,
        };
        by_value.then_with(|| direct(a.id.cmp(&b.id)))
    }

    /// Whether `starting_after` may be used with this order (only the `created_at` orders).
    #[must_use]
    pub fn allows_cursor(&self) -> bool {
        self.field == UserOrderField::CreatedAt
    }
}

/// Validates `starting_after` against the order and offset, as Clerk's spec describes.
///
/// # Errors
/// With an order other than `created_at`, or with a non-zero `offset`.
pub fn check_cursor(starting_after: Option<&str>, order: UserOrder, offset: usize) -> Result<(), ClerkApiError> {
    if starting_after.is_some() {
        if !order.allows_cursor() {
            return Err(invalid_value(
                "starting_after",
                "starting_after requires ordering by created_at (order_by omitted, created_at, +created_at or -created_at)",
            ));
        }
        if offset != 0 {
            return Err(invalid_value("starting_after", "starting_after cannot be combined with a non-zero offset"));
        }
    }
    Ok(())
}
