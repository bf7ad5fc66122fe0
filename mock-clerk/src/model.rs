//! Clerk's API objects — User, EmailAddress, PhoneNumber, Session, JWT template — serialised
//! exactly as the Backend API does (timestamps in milliseconds, every required field of
//! Clerk's OpenAPI spec present, `null` where Clerk sends `null`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A verification as Clerk attaches it to an email address or phone number.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Verification {
    /// `verification_otp`.
    pub object: String,
    /// `verified` or `unverified`.
    pub status: String,
    /// `email_code` or `phone_code`.
    pub strategy: String,
    /// Attempts made.
    pub attempts: Option<i64>,
    /// Expiry of the code (ms).
    pub expire_at: Option<i64>,
}

impl Verification {
    fn otp(verified: bool, strategy: &str) -> Self {
        Self {
            object: "verification_otp".into(),
            status: if verified { "verified" } else { "unverified" }.into(),
            strategy: strategy.into(),
            attempts: Some(1),
            expire_at: None,
        }
    }
}

/// `email_addresses[]` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EmailAddress {
    /// `idn_…`
    pub id: String,
    /// `email_address`.
    pub object: String,
    /// The address.
    pub email_address: String,
    /// Reserved addresses cannot be used.
    pub reserved: bool,
    /// How it was verified.
    pub verification: Option<Verification>,
    /// Linked external accounts.
    pub linked_to: Vec<Value>,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
}

impl EmailAddress {
    /// A verified (by code) address created at `now_ms`.
    #[must_use]
    pub fn new(address: &str, verified: bool, now_ms: i64) -> Self {
        Self {
            id: crate::ids::new_id("idn"),
            object: "email_address".into(),
            email_address: address.into(),
            reserved: false,
            verification: Some(Verification::otp(verified, "email_code")),
            linked_to: vec![],
            created_at: now_ms,
            updated_at: now_ms,
        }
    }
}

/// `phone_numbers[]` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PhoneNumber {
    /// `idn_…`
    pub id: String,
    /// `phone_number`.
    pub object: String,
    /// E.164 number.
    pub phone_number: String,
    /// Reserved for second factor.
    pub reserved_for_second_factor: bool,
    /// Default second factor.
    pub default_second_factor: bool,
    /// Reserved.
    pub reserved: bool,
    /// How it was verified.
    pub verification: Option<Verification>,
    /// Linked external accounts.
    pub linked_to: Vec<Value>,
    /// Backup codes.
    pub backup_codes: Option<Vec<String>>,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
}

impl PhoneNumber {
    /// A verified number created at `now_ms`.
    #[must_use]
    pub fn new(number: &str, verified: bool, now_ms: i64) -> Self {
        Self {
            id: crate::ids::new_id("idn"),
            object: "phone_number".into(),
            phone_number: number.into(),
            reserved_for_second_factor: false,
            default_second_factor: false,
            reserved: false,
            verification: Some(Verification::otp(verified, "phone_code")),
            linked_to: vec![],
            backup_codes: None,
            created_at: now_ms,
            updated_at: now_ms,
        }
    }
}

/// A Clerk user, as `GET /v1/users/{id}` returns it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[allow(clippy::struct_excessive_bools)]
pub struct User {
    /// `user_…`
    pub id: String,
    /// `user`.
    pub object: String,
    /// Id in the application's own system (legacy users).
    pub external_id: Option<String>,
    /// Id of the primary entry of `email_addresses`, or `null` (phone-only users).
    pub primary_email_address_id: Option<String>,
    /// Id of the primary entry of `phone_numbers`.
    pub primary_phone_number_id: Option<String>,
    /// Always `null` here.
    pub primary_web3_wallet_id: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Avatar URL (Clerk always has one).
    pub image_url: String,
    /// Deprecated alias of `image_url`.
    pub profile_image_url: String,
    /// Whether an image was uploaded.
    pub has_image: bool,
    /// Readable by the frontend, writable by the backend.
    pub public_metadata: Value,
    /// Backend only.
    pub private_metadata: Value,
    /// Read-write from the frontend.
    pub unsafe_metadata: Value,
    /// Email addresses.
    pub email_addresses: Vec<EmailAddress>,
    /// Phone numbers.
    pub phone_numbers: Vec<PhoneNumber>,
    /// Always empty here.
    pub web3_wallets: Vec<Value>,
    /// Always empty here.
    pub passkeys: Vec<Value>,
    /// Always empty here.
    pub external_accounts: Vec<Value>,
    /// Always empty here.
    pub saml_accounts: Vec<Value>,
    /// Always empty here.
    pub enterprise_accounts: Vec<Value>,
    /// Has a password.
    pub password_enabled: bool,
    /// 2FA on.
    pub two_factor_enabled: bool,
    /// TOTP on.
    pub totp_enabled: bool,
    /// Backup codes on.
    pub backup_code_enabled: bool,
    /// ms.
    pub mfa_enabled_at: Option<i64>,
    /// ms.
    pub mfa_disabled_at: Option<i64>,
    /// Banned.
    pub banned: bool,
    /// Locked.
    pub locked: bool,
    /// Seconds until unlocked.
    pub lockout_expires_in_seconds: Option<i64>,
    /// Attempts left.
    pub verification_attempts_remaining: Option<i64>,
    /// ms.
    pub last_sign_in_at: Option<i64>,
    /// ms.
    pub last_active_at: Option<i64>,
    /// ms.
    pub legal_accepted_at: Option<i64>,
    /// Can delete themself.
    pub delete_self_enabled: bool,
    /// Can create organisations.
    pub create_organization_enabled: bool,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
}

impl User {
    /// The primary email address, if any.
    #[must_use]
    pub fn primary_email(&self) -> Option<&str> {
        let id = self.primary_email_address_id.as_deref()?;
        self.email_addresses.iter().find(|e| e.id == id).map(|e| e.email_address.as_str())
    }

    /// The primary phone number, if any.
    #[must_use]
    pub fn primary_phone(&self) -> Option<&str> {
        let id = self.primary_phone_number_id.as_deref()?;
        self.phone_numbers.iter().find(|p| p.id == id).map(|p| p.phone_number.as_str())
    }

    /// The JSON Clerk sends.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What a new user looks like. Every field is optional: a user may have no email at all.
///
/// ```
/// use mock_clerk::NewUser;
/// let u = NewUser::with_email("ada@example.com").names("Ada", "Lovelace");
/// let phone_only = NewUser::default().phone("+15555550100");
/// # let _ = (u, phone_only);
/// ```
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Fixed id (default: a new `user_…`).
    #[serde(default)]
    pub id: Option<String>,
    /// Email addresses; the first is primary.
    #[serde(default, alias = "email_address")]
    pub email_addresses: Vec<String>,
    /// Whether the emails are verified (default true).
    #[serde(default)]
    pub email_unverified: bool,
    /// Phone numbers; the first is primary.
    #[serde(default, alias = "phone_number")]
    pub phone_numbers: Vec<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Username.
    #[serde(default)]
    pub username: Option<String>,
    /// Legacy id from the application's own user table.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Public metadata.
    #[serde(default)]
    pub public_metadata: Option<Value>,
    /// Private metadata.
    #[serde(default)]
    pub private_metadata: Option<Value>,
    /// Unsafe metadata.
    #[serde(default)]
    pub unsafe_metadata: Option<Value>,
    /// Avatar URL.
    #[serde(default)]
    pub image_url: Option<String>,
}

impl NewUser {
    /// A user with one verified email address.
    #[must_use]
    pub fn with_email(email: &str) -> Self {
        Self { email_addresses: vec![email.into()], ..Self::default() }
    }

    /// Adds an email address (the first one is primary).
    #[must_use]
    pub fn email(mut self, email: &str) -> Self {
        self.email_addresses.push(email.into());
        self
    }

    /// Adds a phone number (the first one is primary).
    #[must_use]
    pub fn phone(mut self, number: &str) -> Self {
        self.phone_numbers.push(number.into());
        self
    }

    /// Sets first and last name.
    #[must_use]
    pub fn names(mut self, first: &str, last: &str) -> Self {
        self.first_name = Some(first.into());
        self.last_name = Some(last.into());
        self
    }

    /// Sets the username.
    #[must_use]
    pub fn username(mut self, username: &str) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the legacy `external_id`.
    #[must_use]
    pub fn external_id(mut self, id: &str) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// Sets public metadata.
    #[must_use]
    pub fn public_metadata(mut self, value: Value) -> Self {
        self.public_metadata = Some(value);
        self
    }

    /// Sets a fixed user id.
    #[must_use]
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.into());
        self
    }

    pub(crate) fn build(self, now_ms: i64) -> User {
        let emails: Vec<EmailAddress> = self.email_addresses.iter().map(|e| EmailAddress::new(e, !self.email_unverified, now_ms)).collect();
        let phones: Vec<PhoneNumber> = self.phone_numbers.iter().map(|p| PhoneNumber::new(p, true, now_ms)).collect();
        let id = self.id.unwrap_or_else(|| crate::ids::new_id("user"));
        let image_url = self.image_url.unwrap_or_else(|| format!("https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCIsImlpZCI6Imluc18{}", &id[5..]));
        User {
            object: "user".into(),
            external_id: self.external_id,
            primary_email_address_id: emails.first().map(|e| e.id.clone()),
            primary_phone_number_id: phones.first().map(|p| p.id.clone()),
            primary_web3_wallet_id: None,
            username: self.username,
            first_name: self.first_name,
            last_name: self.last_name,
            profile_image_url: image_url.clone(),
            image_url,
            has_image: false,
            public_metadata: self.public_metadata.unwrap_or_else(|| Value::Object(Default::default())),
            private_metadata: self.private_metadata.unwrap_or_else(|| Value::Object(Default::default())),
            unsafe_metadata: self.unsafe_metadata.unwrap_or_else(|| Value::Object(Default::default())),
            email_addresses: emails,
            phone_numbers: phones,
            web3_wallets: vec![],
            passkeys: vec![],
            external_accounts: vec![],
            saml_accounts: vec![],
            enterprise_accounts: vec![],
            password_enabled: false,
            two_factor_enabled: false,
            totp_enabled: false,
            backup_code_enabled: false,
            mfa_enabled_at: None,
            mfa_disabled_at: None,
            banned: false,
            locked: false,
            lockout_expires_in_seconds: None,
            verification_attempts_remaining: Some(100),
            last_sign_in_at: None,
            last_active_at: None,
            legal_accepted_at: None,
            delete_self_enabled: true,
            create_organization_enabled: true,
            created_at: now_ms,
            updated_at: now_ms,
            id,
        }
    }
}

/// Every status a Clerk session can have.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Signed in.
    #[default]
    Active,
    /// Revoked by the backend.
    Revoked,
    /// Signed out.
    Ended,
    /// Past `expire_at`.
    Expired,
    /// Removed by the user.
    Removed,
    /// Past `abandon_at`.
    Abandoned,
    /// Replaced by another session.
    Replaced,
    /// Signed in with pending tasks.
    Pending,
}

impl SessionStatus {
    /// The status string Clerk uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Ended => "ended",
            Self::Expired => "expired",
            Self::Removed => "removed",
            Self::Abandoned => "abandoned",
            Self::Replaced => "replaced",
            Self::Pending => "pending",
        }
    }

    /// Whether the session can still mint tokens.
    #[must_use]
    pub fn can_mint(self) -> bool {
        matches!(self, Self::Active | Self::Pending)
    }
}

/// An organisation membership active in a session (the `o` claim of v2 tokens).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActiveOrganization {
    /// `org_…`
    pub id: String,
    /// Slug.
    pub slug: String,
    /// Name (for the `{{org.name}}` shortcode).
    pub name: String,
    /// Role, e.g. `org:admin`.
    pub role: String,
    /// Permissions, e.g. `org:sys_memberships:manage`.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A Clerk session, as `GET /v1/sessions/{id}` returns it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Session {
    /// `session`.
    pub object: String,
    /// `sess_…`
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// `client_…`
    pub client_id: String,
    /// Impersonation actor.
    pub actor: Option<Value>,
    /// Status.
    pub status: SessionStatus,
    /// Active organisation id.
    pub last_active_organization_id: Option<String>,
    /// ms.
    pub last_active_at: i64,
    /// ms.
    pub expire_at: i64,
    /// ms.
    pub abandon_at: i64,
    /// ms.
    pub updated_at: i64,
    /// ms.
    pub created_at: i64,
    /// Pending tasks.
    pub tasks: Option<Vec<Value>>,
    /// When the first factor was verified (ms); drives the `fva` claim.
    #[serde(skip)]
    pub first_factor_at: i64,
    /// When the second factor was verified (ms), if ever.
    #[serde(skip)]
    pub second_factor_at: Option<i64>,
    /// The active organisation membership, if any.
    #[serde(skip)]
    pub active_organization: Option<ActiveOrganization>,
}

impl Session {
    /// The JSON Clerk sends.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A JWT template, as `GET /v1/jwt_templates` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JwtTemplate {
    /// `jwt_template`.
    pub object: String,
    /// `jtmp_…`
    pub id: String,
    /// The name passed to `getToken({ template })`.
    pub name: String,
    /// The claims, with shortcodes.
    pub claims: Value,
    /// Seconds (default 60).
    pub lifetime: i64,
    /// Seconds subtracted from `nbf` (default 5).
    pub allowed_clock_skew: i64,
    /// Whether a custom key signs its tokens.
    pub custom_signing_key: bool,
    /// `RS256` or `HS256`.
    pub signing_algorithm: String,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
    /// The custom key: an HMAC secret for HS256, a PKCS#8 PEM for RS256. Never serialised.
    #[serde(skip)]
    pub signing_key: Option<String>,
}

/// A Clerk organisation, as `GET /v1/organizations/{id}` returns it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Organization {
    /// `organization`.
    pub object: String,
    /// `org_…`
    pub id: String,
    /// Name.
    pub name: String,
    /// Unique slug.
    pub slug: String,
    /// Logo URL.
    pub image_url: String,
    /// Whether a logo was uploaded.
    pub has_image: bool,
    /// Number of members.
    pub members_count: i64,
    /// Pending invitations (always 0 here).
    pub pending_invitations_count: i64,
    /// 0 for unlimited.
    pub max_allowed_memberships: i64,
    /// Whether admins may delete it.
    pub admin_delete_enabled: bool,
    /// Public metadata.
    pub public_metadata: Value,
    /// Private metadata.
    pub private_metadata: Value,
    /// Creator's user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The role set its members' roles come from (`role_set_key` of create/update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_set_key: Option<String>,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
}

impl Organization {
    /// The JSON Clerk sends.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A user's membership in an organisation (stored flat; [`OrganizationMembership::to_json`]
/// embeds the organisation and the user's public data like Clerk).
#[derive(Clone, Debug, PartialEq)]
pub struct OrganizationMembership {
    /// `orgmem_…`
    pub id: String,
    /// The organisation.
    pub organization_id: String,
    /// The member.
    pub user_id: String,
    /// Role key, e.g. `org:admin`.
    pub role: String,
    /// Permission keys the role grants, e.g. `org:invoices:read`.
    pub permissions: Vec<String>,
    /// Public metadata.
    pub public_metadata: Value,
    /// Private metadata.
    pub private_metadata: Value,
    /// ms.
    pub created_at: i64,
    /// ms.
    pub updated_at: i64,
}

impl OrganizationMembership {
    /// The JSON Clerk sends, with the organisation and the member's public data embedded.
    #[must_use]
    pub fn to_json(&self, organization: &Organization, user: &User) -> Value {
        let role_name = self.role.strip_prefix("org:").unwrap_or(&self.role);
        let mut role_name: Vec<char> = role_name.chars().collect();
        if let Some(first) = role_name.first_mut() {
            *first = first.to_ascii_uppercase();
        }
        serde_json::json!({
            "object": "organization_membership",
            "id": self.id,
            "role": self.role,
            "role_name": role_name.into_iter().collect::<String>(),
            "permissions": self.permissions,
            "public_metadata": self.public_metadata,
            "private_metadata": self.private_metadata,
            "organization": organization.to_json(),
            "public_user_data": {
                "user_id": user.id,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "profile_image_url": user.profile_image_url,
                "image_url": user.image_url,
                "has_image": user.has_image,
                "identifier": user.primary_email().or(user.primary_phone()).or(user.username.as_deref()),
                "username": user.username,
                "banned": user.banned,
            },
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Clerk's system permissions of the default roles. They are never put in session tokens
/// (Clerk leaves system permissions out of `o.per`/`o.fpm` and `org_permissions`).
pub const ADMIN_SYSTEM_PERMISSIONS: &[&str] = &[
    "org:sys_profile:manage",
    "org:sys_profile:delete",
    "org:sys_memberships:read",
    "org:sys_memberships:manage",
    "org:sys_domains:read",
    "org:sys_domains:manage",
];

/// The system permissions of `org:member`.
pub const MEMBER_SYSTEM_PERMISSIONS: &[&str] = &["org:sys_memberships:read"];
