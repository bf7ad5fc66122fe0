//! The instance's users, sessions and JWT templates, with a change feed that webhooks
//! (and tests) subscribe to.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::error::Error;
use crate::model::{ActiveOrganization, JwtTemplate, NewUser, Organization, OrganizationMembership, Session, SessionStatus, User};
use crate::query::{UserFilter, UserOrder};

mod event;
mod orgs;

pub use event::StoreEvent;

#[derive(Default)]
struct Inner {
    users: BTreeMap<String, User>,
    sessions: BTreeMap<String, Session>,
    templates: BTreeMap<String, JwtTemplate>,
    organizations: BTreeMap<String, Organization>,
    memberships: BTreeMap<String, OrganizationMembership>,
    /// Custom roles: key → permission keys (the default `org:admin` and `org:member` are built in).
    roles: BTreeMap<String, Vec<String>>,
}

impl Inner {
    fn orgs_of(&self, user_id: &str) -> Vec<String> {
        self.memberships.values().filter(|m| m.user_id == user_id).map(|m| m.organization_id.clone()).collect()
    }

    fn permissions_of(&self, role: &str) -> Option<Vec<String>> {
        let system = |p: &[&str]| p.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        match (role, self.roles.get(role)) {
            (_, Some(custom)) => Some(custom.clone()),
            ("org:admin", None) => Some(system(crate::model::ADMIN_SYSTEM_PERMISSIONS)),
            ("org:member", None) => Some(system(crate::model::MEMBER_SYSTEM_PERMISSIONS)),
            _ => None,
        }
    }

    fn membership_json(&self, m: &OrganizationMembership) -> Option<Value> {
        Some(m.to_json(self.organizations.get(&m.organization_id)?, self.users.get(&m.user_id)?))
    }
}

/// In-memory users, sessions and templates of one instance.
#[derive(Clone)]
pub struct Store {
    inner: Arc<RwLock<Inner>>,
    clock: Clock,
    events: broadcast::Sender<StoreEvent>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("Store").field("users", &inner.users.len()).field("sessions", &inner.sessions.len()).field("templates", &inner.templates.len()).finish()
    }
}

impl Store {
    /// An empty store on `clock`.
    #[must_use]
    pub fn new(clock: Clock) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self { inner: Arc::default(), clock, events }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, event: StoreEvent) {
        // No subscriber is fine: webhooks are optional.
        let _ = self.events.send(event);
    }

    /// Subscribes to changes from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Creates a user.
    ///
    /// # Errors
    /// [`Error::EmailTaken`] if another user has one of its email addresses.
    pub fn create_user(&self, new: NewUser) -> Result<User, Error> {
        let user = new.build(self.clock.now_ms());
        {
            let mut inner = self.write();
            for e in &user.email_addresses {
                let taken = inner.users.values().any(|u| u.email_addresses.iter().any(|x| x.email_address.eq_ignore_ascii_case(&e.email_address)));
                if taken {
                    return Err(Error::EmailTaken(e.email_address.clone()));
                }
            }
            inner.users.insert(user.id.clone(), user.clone());
        }
        tracing::debug!(user_id = %user.id, "user created");
        self.publish(StoreEvent::UserCreated(user.clone()));
        Ok(user)
    }

    /// A user by id.
    ///
    /// # Errors
    /// [`Error::UserNotFound`].
    pub fn user(&self, id: &str) -> Result<User, Error> {
        self.read().users.get(id).cloned().ok_or_else(|| Error::UserNotFound(id.into()))
    }

    /// Users matching `filter` in `order`, after the user `starting_after` (a cursor) or
    /// after `offset` users, at most `limit`.
    #[must_use]
    pub fn list_users(&self, filter: &UserFilter, order: UserOrder, starting_after: Option<&str>, limit: usize, offset: usize) -> Vec<User> {
        let inner = self.read();
        let mut users: Vec<User> = inner.users.values().filter(|u| filter.matches(u, &inner.orgs_of(&u.id))).cloned().collect();
        drop(inner);
        users.sort_by(|a, b| order.compare(a, b));
        let skip = match starting_after {
            Some(cursor) => users.iter().position(|u| u.id == cursor).map_or(users.len(), |i| i + 1),
            None => offset,
        };
        users.into_iter().skip(skip).take(limit).collect()
    }

    /// How many users match `filter`.
    #[must_use]
    pub fn count_users(&self, filter: &UserFilter) -> usize {
        let inner = self.read();
        inner.users.values().filter(|u| filter.matches(u, &inner.orgs_of(&u.id))).count()
    }

    /// Changes a user with `change` and publishes `user.updated`.
    ///
    /// # Errors
    /// [`Error::UserNotFound`].
    pub fn update_user(&self, id: &str, change: impl FnOnce(&mut User)) -> Result<User, Error> {
        let user = {
            let mut inner = self.write();
            let user = inner.users.get_mut(id).ok_or_else(|| Error::UserNotFound(id.into()))?;
            change(user);
            user.updated_at = self.clock.now_ms();
            user.clone()
        };
        self.publish(StoreEvent::UserUpdated(user.clone()));
        Ok(user)
    }

    /// Deletes a user (and removes their sessions) and publishes `user.deleted`.
    ///
    /// # Errors
    /// [`Error::UserNotFound`].
    pub fn delete_user(&self, id: &str) -> Result<(), Error> {
        let (external_id, memberships) = {
            let mut inner = self.write();
            let memberships: Vec<Value> = inner.memberships.values().filter(|m| m.user_id == id).filter_map(|m| inner.membership_json(m)).collect();
            let user = inner.users.remove(id).ok_or_else(|| Error::UserNotFound(id.into()))?;
            inner.sessions.retain(|_, s| s.user_id != id);
            inner.memberships.retain(|_, m| m.user_id != id);
            let orgs: Vec<String> = inner.organizations.keys().cloned().collect();
            for org in orgs {
                let count = inner.memberships.values().filter(|m| m.organization_id == org).count();
                if let Some(o) = inner.organizations.get_mut(&org) {
                    o.members_count = i64::try_from(count).unwrap_or(i64::MAX);
                }
            }
            (user.external_id, memberships)
        };
        for m in memberships {
            self.publish(StoreEvent::MembershipDeleted(m));
        }
        self.publish(StoreEvent::UserDeleted { id: id.into(), external_id });
        Ok(())
    }

    /// Creates an active session for `user_id` (signed in now, first factor now).
    ///
    /// # Errors
    /// [`Error::UserNotFound`].
    pub fn create_session(&self, user_id: &str) -> Result<Session, Error> {
        self.create_session_with(user_id, SessionStatus::Active, None)
    }

    /// Creates a session with a given status and optional active organisation.
    ///
    /// # Errors
    /// [`Error::UserNotFound`].
    pub fn create_session_with(&self, user_id: &str, status: SessionStatus, organization: Option<ActiveOrganization>) -> Result<Session, Error> {
        let now = self.clock.now_ms();
        let session = Session {
            object: "session".into(),
            id: crate::ids::new_id("sess"),
            user_id: user_id.into(),
            client_id: crate::ids::new_id("client"),
            actor: None,
            status,
            last_active_organization_id: organization.as_ref().map(|o| o.id.clone()),
            last_active_at: now,
            expire_at: now + 7 * 24 * 3600 * 1000,
            abandon_at: now + 30 * 24 * 3600 * 1000,
            updated_at: now,
            created_at: now,
            tasks: None,
            first_factor_at: now,
            second_factor_at: None,
            active_organization: organization,
        };
        {
            let mut inner = self.write();
            let user = inner.users.get_mut(user_id).ok_or_else(|| Error::UserNotFound(user_id.into()))?;
            user.last_sign_in_at = Some(now);
            user.last_active_at = Some(now);
            inner.sessions.insert(session.id.clone(), session.clone());
        }
        self.publish(StoreEvent::SessionCreated(session.clone()));
        Ok(session)
    }

    /// A session by id.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`].
    pub fn session(&self, id: &str) -> Result<Session, Error> {
        self.read().sessions.get(id).cloned().ok_or_else(|| Error::SessionNotFound(id.into()))
    }

    /// Sessions, newest first, optionally of one user and/or one status.
    #[must_use]
    pub fn list_sessions(&self, user_id: Option<&str>, status: Option<SessionStatus>) -> Vec<Session> {
        let mut sessions: Vec<Session> =
            self.read().sessions.values().filter(|s| user_id.is_none_or(|u| s.user_id == u) && status.is_none_or(|st| s.status == st)).cloned().collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        sessions
    }

    /// Changes a session's status and publishes the matching event
    /// (`session.revoked`, `session.ended`, `session.removed`, `session.pending`; other
    /// statuses publish nothing).
    ///
    /// # Errors
    /// [`Error::SessionNotFound`].
    pub fn set_session_status(&self, id: &str, status: SessionStatus) -> Result<Session, Error> {
        let session = {
            let mut inner = self.write();
            let s = inner.sessions.get_mut(id).ok_or_else(|| Error::SessionNotFound(id.into()))?;
            s.status = status;
            s.updated_at = self.clock.now_ms();
            s.clone()
        };
        match status {
            SessionStatus::Revoked => self.publish(StoreEvent::SessionRevoked(session.clone())),
            SessionStatus::Ended => self.publish(StoreEvent::SessionEnded(session.clone())),
            SessionStatus::Removed => self.publish(StoreEvent::SessionRemoved(session.clone())),
            SessionStatus::Pending => self.publish(StoreEvent::SessionPending(session.clone())),
            _ => {}
        }
        Ok(session)
    }

    /// Changes a session in place (e.g. second factor time, organisation) without an event.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`].
    pub fn update_session(&self, id: &str, change: impl FnOnce(&mut Session)) -> Result<Session, Error> {
        let mut inner = self.write();
        let s = inner.sessions.get_mut(id).ok_or_else(|| Error::SessionNotFound(id.into()))?;
        change(s);
        s.updated_at = self.clock.now_ms();
        Ok(s.clone())
    }

    /// Deep-merges metadata into a user like `PATCH /v1/users/{id}/metadata`: nested objects
    /// merge, `null` deletes a key; publishes `user.updated`.
    ///
    /// # Errors
    /// [`Error::UserNotFound`].
    pub fn merge_user_metadata(&self, id: &str, public: Option<&Value>, private: Option<&Value>, unsafe_: Option<&Value>) -> Result<User, Error> {
        self.update_user(id, |u| {
            for (target, patch) in [(&mut u.public_metadata, public), (&mut u.private_metadata, private), (&mut u.unsafe_metadata, unsafe_)] {
                if let Some(patch) = patch {
                    deep_merge(target, patch);
                }
            }
        })
    }

    pub(crate) fn insert_template(&self, template: JwtTemplate) {
        self.write().templates.insert(template.name.clone(), template);
    }

    /// A JWT template by name.
    ///
    /// # Errors
    /// [`Error::TemplateNotFound`].
    pub fn template(&self, name: &str) -> Result<JwtTemplate, Error> {
        self.read().templates.get(name).cloned().ok_or_else(|| Error::TemplateNotFound(name.into()))
    }

    /// All JWT templates, by name.
    #[must_use]
    pub fn templates(&self) -> Vec<JwtTemplate> {
        self.read().templates.values().cloned().collect()
    }

    /// The clock the store stamps with.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// Clerk's metadata merge: objects merge key by key (recursively), `null` removes the key,
/// anything else replaces.
pub fn deep_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if let Some(existing) = t.get_mut(k).filter(|e| e.is_object() && v.is_object()) {
                    deep_merge(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
