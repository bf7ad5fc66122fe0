//! The store's change feed: what subscribers (the webhook dispatcher, tests) receive.

use serde_json::Value;

use crate::model::{Organization, Session, User};

/// A change in the store, published to subscribers (the webhook dispatcher among them).
#[derive(Clone, Debug, PartialEq)]
pub enum StoreEvent {
    /// A user was created.
    UserCreated(User),
    /// A user was changed.
    UserUpdated(User),
    /// A user was deleted.
    UserDeleted {
        /// The deleted user's id.
        id: String,
        /// Their `external_id`, which Clerk includes in `user.deleted`.
        external_id: Option<String>,
    },
    /// A session was created.
    SessionCreated(Session),
    /// A session was ended (sign-out).
    SessionEnded(Session),
    /// A session was revoked by the backend.
    SessionRevoked(Session),
    /// A session was removed by the user.
    SessionRemoved(Session),
    /// A session became pending: signed in with tasks left (e.g. choosing an organization).
    SessionPending(Session),
    /// An organisation was created.
    OrganizationCreated(Organization),
    /// An organisation was changed.
    OrganizationUpdated(Organization),
    /// An organisation was deleted.
    OrganizationDeleted {
        /// Its id.
        id: String,
        /// Its slug.
        slug: String,
    },
    /// A membership was created (the JSON Clerk sends, organisation and user embedded).
    MembershipCreated(Value),
    /// A membership was changed.
    MembershipUpdated(Value),
    /// A membership was deleted.
    MembershipDeleted(Value),
}

impl StoreEvent {
    /// The Clerk webhook event type, e.g. `user.created`.
    #[must_use]
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::UserCreated(_) => "user.created",
            Self::UserUpdated(_) => "user.updated",
            Self::UserDeleted { .. } => "user.deleted",
            Self::SessionCreated(_) => "session.created",
            Self::SessionEnded(_) => "session.ended",
            Self::SessionRevoked(_) => "session.revoked",
            Self::SessionRemoved(_) => "session.removed",
            Self::SessionPending(_) => "session.pending",
            Self::OrganizationCreated(_) => "organization.created",
            Self::OrganizationUpdated(_) => "organization.updated",
            Self::OrganizationDeleted { .. } => "organization.deleted",
            Self::MembershipCreated(_) => "organizationMembership.created",
            Self::MembershipUpdated(_) => "organizationMembership.updated",
            Self::MembershipDeleted(_) => "organizationMembership.deleted",
        }
    }

    /// The webhook `data` payload: the object, or `{object, id, deleted}` for deletions.
    #[must_use]
    pub fn data(&self) -> Value {
        match self {
            Self::UserCreated(u) | Self::UserUpdated(u) => u.to_json(),
            Self::UserDeleted { id, external_id } => {
                let mut data = serde_json::json!({ "object": "user", "id": id, "deleted": true });
                if let Some(x) = external_id {
                    data["external_id"] = Value::String(x.clone());
                }
                data
            }
            Self::SessionCreated(s) | Self::SessionEnded(s) | Self::SessionRevoked(s) | Self::SessionRemoved(s) | Self::SessionPending(s) => s.to_json(),
            Self::OrganizationCreated(o) | Self::OrganizationUpdated(o) => o.to_json(),
            Self::OrganizationDeleted { id, slug } => serde_json::json!({ "object": "organization", "id": id, "slug": slug, "deleted": true }),
            Self::MembershipCreated(m) | Self::MembershipUpdated(m) | Self::MembershipDeleted(m) => m.clone(),
        }
    }
}
