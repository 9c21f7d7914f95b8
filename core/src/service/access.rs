//! Who may see and change what: the role table of docs/design.md (Roles), and the row
//! scope (REP: own deals; MANAGER: the team below, transitively) expressed as
//! SQL conditions so it is applied by the database, never after loading.
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::DatabaseBackend;

use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult};

/// Roles that may read everything.
pub const ALL_READERS: &[Role] = &[Role::Admin, Role::Ops, Role::Viewer];
/// Roles that may read reference data (stages, territories, playbooks).
pub const REFERENCE_READERS: &[Role] = &[
    Role::Admin,
    Role::Ops,
    Role::Viewer,
    Role::Manager,
    Role::Rep,
    Role::Integration,
];
/// Roles that may read deals, reps and accounts (scoped for REP and MANAGER).
pub const DEAL_READERS: &[Role] = REFERENCE_READERS;
/// Roles that may read metrics and forecasts (scoped for REP and MANAGER).
pub const METRIC_READERS: &[Role] = &[
    Role::Admin,
    Role::Ops,
    Role::Viewer,
    Role::Manager,
    Role::Rep,
];
/// Roles that write deals (REP and MANAGER within their scope).
pub const DEAL_WRITERS: &[Role] = &[
    Role::Admin,
    Role::Ops,
    Role::Integration,
    Role::Manager,
    Role::Rep,
];
/// Roles that write reps and accounts.
pub const ORG_WRITERS: &[Role] = &[Role::Admin, Role::Ops, Role::Integration];
/// Roles that configure the organisation (territories, stages, quotas, playbooks, plans).
pub const CONFIG_WRITERS: &[Role] = &[Role::Admin, Role::Ops];
/// Roles that run S&OP plans (create, move, set lines, release, revise).
pub const SOP_WRITERS: &[Role] = &[Role::Admin, Role::Ops];
/// Roles that read S&OP plans (organisation-wide numbers).
pub const SOP_READERS: &[Role] = &[Role::Admin, Role::Ops, Role::Viewer, Role::Manager];
/// Roles that read the audit trail.
pub const AUDIT_READERS: &[Role] = &[Role::Admin, Role::Ops];
/// Roles that read quotas and commission terms, on every path (the
/// `quotas` query, `Rep.quotas`, `Rep.commissionRate`, ...): pay is metric
/// data, so INTEGRATION, which syncs reps, does not read it.
pub const COMPENSATION_READERS: &[Role] = METRIC_READERS;

/// The kinds of data a rep carries, for the rule of `Principal::may_read_rep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepData {
    /// id, name, title and the org chart around it (territory, manager,
    /// direct reports): readable by every reader of reps, so a REP can see
    /// who its manager and peers are.
    Directory,
    /// Contact and employment data and activity (email, external id, hire
    /// date, status, ramp, timestamps, deals): reps in the caller's scope.
    Personal,
    /// Quotas and commission terms: reps in the caller's scope, and only for
    /// `COMPENSATION_READERS`.
    Compensation,
}

/// The deals (by owner) a principal can see and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DealScope {
    All,
    /// Deals owned by this rep.
    Owner(i64),
    /// Deals owned by this manager or anyone below them.
    Team(i64),
}

impl Principal {
    pub fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "the {} role cannot do this",
                self.role.as_str()
            )))
        }
    }

    /// May the principal read `data` of a rep that is, or is not, in its
    /// scope (`DealScope::has_rep`)? A rep outside it shows only its
    /// directory entry; the rest is FORBIDDEN, naming why.
    pub fn may_read_rep(&self, data: RepData, in_scope: bool) -> AppResult<()> {
        match data {
            RepData::Directory => Ok(()),
            RepData::Compensation if !COMPENSATION_READERS.contains(&self.role) => {
                Err(AppError::forbidden(format!(
                    "the {} role cannot read quotas or commission terms",
                    self.role.as_str()
                )))
            }
            _ if in_scope => Ok(()),
            _ => Err(AppError::forbidden(
                "only name and title of reps outside your team are visible",
            )),
        }
    }

    pub fn scope(&self) -> DealScope {
        match (self.role, self.rep_id) {
            (Role::Rep, Some(id)) => DealScope::Owner(id),
            (Role::Manager, Some(id)) => DealScope::Team(id),
            _ => DealScope::All,
        }
    }
}

/// The ids of a manager and every rep below them, as a subquery with one
/// placeholder (the manager's id).
pub fn team_subquery_sql(placeholder: &str) -> String {
    format!(
        "WITH RECURSIVE team(id) AS (SELECT id FROM rep WHERE id = {placeholder} \
         UNION SELECT r.id FROM rep r JOIN team t ON r.manager_id = t.id) SELECT id FROM team"
    )
}

impl DealScope {
    /// Whether the rep is in the scope when that is known without the
    /// database (everything, the owner itself, the manager itself); None when
    /// the team has to be walked (`service::rep::in_scope_many`).
    pub fn has_rep(&self, rep_id: i64) -> Option<bool> {
        match *self {
            DealScope::All => Some(true),
            DealScope::Owner(own) => Some(own == rep_id),
            DealScope::Team(head) if head == rep_id => Some(true),
            DealScope::Team(_) => None,
        }
    }

    /// A condition on a column holding a rep id (deal.owner_id, rep.id, quota.rep_id),
    /// or None when everything is visible.
    pub fn rep_condition(&self, column: &str, backend: DatabaseBackend) -> Option<SimpleExpr> {
        match *self {
            DealScope::All => None,
            DealScope::Owner(id) => Some(Expr::cust(column.to_owned()).eq(id)),
            DealScope::Team(id) => {
                // sea-query substitutes the backend's own placeholder.
                let placeholder = if backend == DatabaseBackend::Postgres {
                    "$1"
                } else {
                    "?"
                };
                Some(Expr::cust_with_values(
                    format!("{column} IN ({})", team_subquery_sql(placeholder)),
                    [id],
                ))
            }
        }
    }

    /// Plain-SQL form of `rep_condition` with its parameters, for hand-written
    /// aggregate queries: ("1 = 1", []) when everything is visible.
    pub fn rep_sql(&self, column: &str) -> (String, Vec<sea_orm::Value>) {
        match *self {
            DealScope::All => ("1 = 1".to_owned(), vec![]),
            DealScope::Owner(id) => (format!("{column} = ?"), vec![id.into()]),
            DealScope::Team(id) => (
                format!("{column} IN ({})", team_subquery_sql("?")),
                vec![id.into()],
            ),
        }
    }
}

/// Roles that manage webhooks (their secrets sign every delivery).
pub const WEBHOOK_ADMINS: &[Role] = &[Role::Admin];

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, rep_id: Option<i64>) -> Principal {
        Principal {
            subject: "t".into(),
            role,
            rep_id,
        }
    }

    #[test]
    fn scope_membership_known_without_the_database() {
        assert_eq!(DealScope::All.has_rep(9), Some(true));
        assert_eq!(DealScope::Owner(3).has_rep(3), Some(true));
        assert_eq!(DealScope::Owner(3).has_rep(9), Some(false));
        assert_eq!(DealScope::Team(3).has_rep(3), Some(true));
        assert_eq!(DealScope::Team(3).has_rep(9), None);
    }

    #[test]
    fn reps_outside_the_scope_show_their_directory_entry_only() {
        let rep = principal(Role::Rep, Some(1));
        assert!(rep.may_read_rep(RepData::Directory, false).is_ok());
        for data in [RepData::Personal, RepData::Compensation] {
            assert!(rep.may_read_rep(data, true).is_ok());
            assert!(matches!(
                rep.may_read_rep(data, false),
                Err(AppError::Forbidden(m)) if m == "only name and title of reps outside your team are visible"
            ));
        }
        let integration = principal(Role::Integration, None);
        assert!(integration.may_read_rep(RepData::Personal, true).is_ok());
        assert!(matches!(
            integration.may_read_rep(RepData::Compensation, true),
            Err(AppError::Forbidden(m)) if m == "the INTEGRATION role cannot read quotas or commission terms"
        ));
    }
}
