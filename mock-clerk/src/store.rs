//! The instance's users, sessions and JWT templates, with a change feed that webhooks
//! (and tests) subscribe to.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::error::Error;
use crate::model::{ActiveOrganization, JwtTemplate, NewUser, Session, SessionStatus, User};

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
    },
    /// A session was created.
    SessionCreated(Session),
    /// A session was ended (sign-out).
    SessionEnded(Session),
    /// A session was revoked by the backend.
    SessionRevoked(Session),
    /// A session was removed by the user.
    SessionRemoved(Session),
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
        }
    }

    /// The webhook `data` payload: the object, or `{object, id, deleted}` for deletions.
    #[must_use]
    pub fn data(&self) -> Value {
        match self {
            Self::UserCreated(u) | Self::UserUpdated(u) => u.to_json(),
            Self::UserDeleted { id } => {
                serde_json::json!({ "object": "user", "id": id, "deleted": true })
            }
            Self::SessionCreated(s) | Self::SessionEnded(s) | Self::SessionRevoked(s) | Self::SessionRemoved(s) => s.to_json(),
        }
    }
}

#[derive(Default)]
struct Inner {
    users: BTreeMap<String, User>,
    sessions: BTreeMap<String, Session>,
    templates: BTreeMap<String, JwtTemplate>,
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

/// Filters of `GET /v1/users`.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Only these email addresses.
    pub email_address: Vec<String>,
    /// Only these ids.
    pub user_id: Vec<String>,
    /// Only these external ids.
    pub external_id: Vec<String>,
    /// Substring match on ids, emails, names, username.
    pub query: Option<String>,
}

impl UserQuery {
    fn matches(&self, u: &User) -> bool {
        (self.email_address.is_empty() || u.email_addresses.iter().any(|e| self.email_address.iter().any(|q| q.eq_ignore_ascii_case(&e.email_address))))
            && (self.user_id.is_empty() || self.user_id.contains(&u.id))
            && (self.external_id.is_empty() || u.external_id.as_ref().is_some_and(|x| self.external_id.contains(x)))
            && self.query.as_ref().is_none_or(|q| {
                let q = q.to_lowercase();
                let fields = [u.first_name.as_deref(), u.last_name.as_deref(), u.username.as_deref(), Some(u.id.as_str())];
                fields.iter().flatten().any(|f| f.to_lowercase().contains(&q)) || u.email_addresses.iter().any(|e| e.email_address.to_lowercase().contains(&q))
            })
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

    /// Users matching `query`, newest first, after `offset`, at most `limit`.
    #[must_use]
    pub fn list_users(&self, query: &UserQuery, limit: usize, offset: usize) -> Vec<User> {
        let mut users: Vec<User> = self.read().users.values().filter(|u| query.matches(u)).cloned().collect();
        users.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        users.into_iter().skip(offset).take(limit).collect()
    }

    /// How many users match `query`.
    #[must_use]
    pub fn count_users(&self, query: &UserQuery) -> usize {
        self.read().users.values().filter(|u| query.matches(u)).count()
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
        {
            let mut inner = self.write();
            inner.users.remove(id).ok_or_else(|| Error::UserNotFound(id.into()))?;
            inner.sessions.retain(|_, s| s.user_id != id);
        }
        self.publish(StoreEvent::UserDeleted { id: id.into() });
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
    /// (`session.revoked`, `session.ended`, `session.removed`; other statuses publish nothing).
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
