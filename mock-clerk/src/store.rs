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

    /// Defines (or redefines) a custom organisation role with its permission keys
    /// (`org:<feature>:<permission>`); `org:admin` and `org:member` exist by default with
    /// Clerk's system permissions.
    pub fn define_role(&self, key: &str, permissions: &[&str]) {
        self.write().roles.insert(key.to_string(), permissions.iter().map(|p| (*p).to_string()).collect());
    }

    /// Creates an organisation; with `created_by`, that user becomes its `org:admin`.
    ///
    /// # Errors
    /// [`Error::SlugTaken`], or [`Error::UserNotFound`] for an unknown creator.
    pub fn create_organization(
        &self,
        name: &str,
        slug: Option<&str>,
        created_by: Option<&str>,
        public_metadata: Option<Value>,
        private_metadata: Option<Value>,
    ) -> Result<Organization, Error> {
        let now = self.clock.now_ms();
        let slug = slug.map_or_else(|| slugify(name), str::to_string);
        let org = Organization {
            object: "organization".into(),
            id: crate::ids::new_id("org"),
            name: name.into(),
            image_url: "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9".into(),
            has_image: false,
            members_count: 0,
            pending_invitations_count: 0,
            max_allowed_memberships: 0,
            admin_delete_enabled: true,
            public_metadata: public_metadata.unwrap_or_else(|| Value::Object(Default::default())),
            private_metadata: private_metadata.unwrap_or_else(|| Value::Object(Default::default())),
            created_by: created_by.map(str::to_string),
            role_set_key: None,
            created_at: now,
            updated_at: now,
            slug,
        };
        {
            let mut inner = self.write();
            if let Some(user) = created_by {
                if !inner.users.contains_key(user) {
                    return Err(Error::UserNotFound(user.into()));
                }
            }
            if inner.organizations.values().any(|o| o.slug == org.slug) {
                return Err(Error::SlugTaken(org.slug.clone()));
            }
            inner.organizations.insert(org.id.clone(), org.clone());
        }
        self.publish(StoreEvent::OrganizationCreated(org.clone()));
        if let Some(user) = created_by {
            self.add_membership(&org.id, user, "org:admin", None, None)?;
            return self.organization(&org.id);
        }
        Ok(org)
    }

    /// An organisation by id or slug.
    ///
    /// # Errors
    /// [`Error::OrganizationNotFound`].
    pub fn organization(&self, id_or_slug: &str) -> Result<Organization, Error> {
        let inner = self.read();
        inner
            .organizations
            .get(id_or_slug)
            .or_else(|| inner.organizations.values().find(|o| o.slug == id_or_slug))
            .cloned()
            .ok_or_else(|| Error::OrganizationNotFound(id_or_slug.into()))
    }

    /// Every organisation, newest first.
    #[must_use]
    pub fn organizations(&self) -> Vec<Organization> {
        let mut orgs: Vec<Organization> = self.read().organizations.values().cloned().collect();
        orgs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
        orgs
    }

    /// The organisation ids `user_id` is a member of.
    #[must_use]
    pub fn organizations_of(&self, user_id: &str) -> Vec<String> {
        self.read().orgs_of(user_id)
    }

    /// Changes an organisation and publishes `organization.updated`.
    ///
    /// # Errors
    /// [`Error::OrganizationNotFound`], [`Error::SlugTaken`].
    pub fn update_organization(&self, id: &str, change: impl FnOnce(&mut Organization)) -> Result<Organization, Error> {
        let org = {
            let mut inner = self.write();
            let mut org = inner.organizations.get(id).cloned().ok_or_else(|| Error::OrganizationNotFound(id.into()))?;
            change(&mut org);
            if inner.organizations.values().any(|o| o.slug == org.slug && o.id != org.id) {
                return Err(Error::SlugTaken(org.slug));
            }
            org.updated_at = self.clock.now_ms();
            inner.organizations.insert(org.id.clone(), org.clone());
            org
        };
        self.publish(StoreEvent::OrganizationUpdated(org.clone()));
        Ok(org)
    }

    /// Deletes an organisation with its memberships (`organizationMembership.deleted` for each,
    /// then `organization.deleted`); sessions that had it active lose it.
    ///
    /// # Errors
    /// [`Error::OrganizationNotFound`].
    pub fn delete_organization(&self, id: &str) -> Result<Organization, Error> {
        let (org, memberships) = {
            let mut inner = self.write();
            let memberships: Vec<Value> = inner.memberships.values().filter(|m| m.organization_id == id).filter_map(|m| inner.membership_json(m)).collect();
            let org = inner.organizations.remove(id).ok_or_else(|| Error::OrganizationNotFound(id.into()))?;
            inner.memberships.retain(|_, m| m.organization_id != id);
            for s in inner.sessions.values_mut().filter(|s| s.last_active_organization_id.as_deref() == Some(id)) {
                s.last_active_organization_id = None;
                s.active_organization = None;
            }
            (org, memberships)
        };
        for m in memberships {
            self.publish(StoreEvent::MembershipDeleted(m));
        }
        self.publish(StoreEvent::OrganizationDeleted { id: org.id.clone(), slug: org.slug.clone() });
        Ok(org)
    }

    /// Adds `user_id` to `org_id` with `role` and publishes `organizationMembership.created`.
    ///
    /// # Errors
    /// Unknown organisation, user or role; an existing membership.
    pub fn add_membership(
        &self,
        org_id: &str,
        user_id: &str,
        role: &str,
        public_metadata: Option<Value>,
        private_metadata: Option<Value>,
    ) -> Result<Value, Error> {
        let now = self.clock.now_ms();
        let json = {
            let mut inner = self.write();
            if !inner.organizations.contains_key(org_id) {
                return Err(Error::OrganizationNotFound(org_id.into()));
            }
            if !inner.users.contains_key(user_id) {
                return Err(Error::UserNotFound(user_id.into()));
            }
            if inner.memberships.values().any(|m| m.organization_id == org_id && m.user_id == user_id) {
                return Err(Error::AlreadyMember { user: user_id.into(), organization: org_id.into() });
            }
            let permissions = inner.permissions_of(role).ok_or_else(|| Error::RoleNotFound(role.into()))?;
            let m = OrganizationMembership {
                id: crate::ids::new_id("orgmem"),
                organization_id: org_id.into(),
                user_id: user_id.into(),
                role: role.into(),
                permissions,
                public_metadata: public_metadata.unwrap_or_else(|| Value::Object(Default::default())),
                private_metadata: private_metadata.unwrap_or_else(|| Value::Object(Default::default())),
                created_at: now,
                updated_at: now,
            };
            inner.memberships.insert(m.id.clone(), m.clone());
            let count = inner.memberships.values().filter(|x| x.organization_id == org_id).count();
            if let Some(o) = inner.organizations.get_mut(org_id) {
                o.members_count = i64::try_from(count).unwrap_or(i64::MAX);
            }
            inner.membership_json(&m).unwrap_or(Value::Null)
        };
        self.publish(StoreEvent::MembershipCreated(json.clone()));
        Ok(json)
    }

    /// Changes a member's role (`organizationMembership.updated`); sessions with this
    /// organisation active get the new role and permissions in their next token.
    ///
    /// # Errors
    /// No such membership or role.
    pub fn update_membership_role(&self, org_id: &str, user_id: &str, role: &str) -> Result<Value, Error> {
        let json = {
            let mut inner = self.write();
            let permissions = inner.permissions_of(role).ok_or_else(|| Error::RoleNotFound(role.into()))?;
            let now = self.clock.now_ms();
            let m = inner
                .memberships
                .values_mut()
                .find(|m| m.organization_id == org_id && m.user_id == user_id)
                .ok_or_else(|| Error::MembershipNotFound { user: user_id.into(), organization: org_id.into() })?;
            m.role = role.into();
            m.permissions.clone_from(&permissions);
            m.updated_at = now;
            let m = m.clone();
            for s in inner.sessions.values_mut().filter(|s| s.user_id == user_id) {
                if let Some(active) = s.active_organization.as_mut().filter(|a| a.id == org_id) {
                    active.role = role.into();
                    active.permissions.clone_from(&permissions);
                    s.updated_at = now;
                }
            }
            inner.membership_json(&m).unwrap_or(Value::Null)
        };
        self.publish(StoreEvent::MembershipUpdated(json.clone()));
        Ok(json)
    }

    /// Removes a member (`organizationMembership.deleted`).
    ///
    /// # Errors
    /// No such membership.
    pub fn delete_membership(&self, org_id: &str, user_id: &str) -> Result<Value, Error> {
        let json = {
            let mut inner = self.write();
            let id = inner
                .memberships
                .values()
                .find(|m| m.organization_id == org_id && m.user_id == user_id)
                .map(|m| m.id.clone())
                .ok_or_else(|| Error::MembershipNotFound { user: user_id.into(), organization: org_id.into() })?;
            let json = inner.memberships.get(&id).and_then(|m| inner.membership_json(m)).unwrap_or(Value::Null);
            inner.memberships.remove(&id);
            let count = inner.memberships.values().filter(|x| x.organization_id == org_id).count();
            if let Some(o) = inner.organizations.get_mut(org_id) {
                o.members_count = i64::try_from(count).unwrap_or(i64::MAX);
            }
            for s in inner.sessions.values_mut().filter(|s| s.user_id == user_id && s.last_active_organization_id.as_deref() == Some(org_id)) {
                s.last_active_organization_id = None;
                s.active_organization = None;
            }
            json
        };
        self.publish(StoreEvent::MembershipDeleted(json.clone()));
        Ok(json)
    }

    /// The memberships of an organisation (Clerk's JSON), oldest first.
    ///
    /// # Errors
    /// [`Error::OrganizationNotFound`].
    pub fn memberships(&self, org_id: &str) -> Result<Vec<Value>, Error> {
        let inner = self.read();
        if !inner.organizations.contains_key(org_id) {
            return Err(Error::OrganizationNotFound(org_id.into()));
        }
        let mut ms: Vec<&OrganizationMembership> = inner.memberships.values().filter(|m| m.organization_id == org_id).collect();
        ms.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(ms.into_iter().filter_map(|m| inner.membership_json(m)).collect())
    }

    /// Makes `org_id` the active organisation of session `sid` (the user must be a member);
    /// `None` clears it. Its tokens then carry the membership's role and permissions.
    ///
    /// # Errors
    /// Unknown session or organisation, or the user is not a member.
    pub fn set_active_organization(&self, sid: &str, org_id: Option<&str>) -> Result<Session, Error> {
        let mut inner = self.write();
        let user_id = inner.sessions.get(sid).map(|s| s.user_id.clone()).ok_or_else(|| Error::SessionNotFound(sid.into()))?;
        let active = match org_id {
            None => None,
            Some(org_id) => {
                let org = inner.organizations.get(org_id).ok_or_else(|| Error::OrganizationNotFound(org_id.into()))?;
                let m = inner
                    .memberships
                    .values()
                    .find(|m| m.organization_id == org_id && m.user_id == user_id)
                    .ok_or_else(|| Error::MembershipNotFound { user: user_id.clone(), organization: org_id.into() })?;
                Some(ActiveOrganization {
                    id: org.id.clone(),
                    slug: org.slug.clone(),
                    name: org.name.clone(),
                    role: m.role.clone(),
                    permissions: m.permissions.clone(),
                })
            }
        };
        let now = self.clock.now_ms();
        let s = inner.sessions.get_mut(sid).ok_or_else(|| Error::SessionNotFound(sid.into()))?;
        s.last_active_organization_id = active.as_ref().map(|a| a.id.clone());
        s.active_organization = active;
        s.updated_at = now;
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

fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-').to_string();
    if slug.is_empty() {
        crate::ids::base62(8).to_lowercase()
    } else {
        slug
    }
}
