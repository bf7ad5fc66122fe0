//! Organisations, their memberships and roles, and a session's active organisation.

use serde_json::Value;

use crate::error::Error;
use crate::model::{ActiveOrganization, Organization, OrganizationMembership, Session};

use super::{Store, StoreEvent};

impl Store {
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
