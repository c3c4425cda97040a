//! Data categories: a company client gets only the categories of personal data its
//! policy grants (the policy's "service providers ... only the information they need"),
//! e.g. a payments client billing but not support tickets. Methods name the category they
//! touch; a client calling a method of a category it was not granted is refused like a
//! method it may not call. The privacy team and the mesh's services are limited by the
//! method rules alone.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use pdm_tls::identity::Caller;

/// One category: its name and the methods that touch it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Category {
    /// Name used in grants (`billing`).
    pub name: String,
    /// Full method paths.
    pub methods: Vec<String>,
}

/// Categories granted to callers: `client:<name>` or `client:*`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// Client patterns.
    pub callers: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
}

/// Which category each method is in, and what each client is granted.
#[derive(Debug, Clone, Default)]
pub struct Categories {
    of_method: HashMap<String, String>,
    /// Grants naming a client exactly.
    exact: HashMap<String, BTreeSet<String>>,
    /// Grants to every client (`client:*`), used for clients without an exact grant.
    any_client: BTreeSet<String>,
}

impl Categories {
    /// Checks and indexes categories and grants: every method in at most one category,
    /// every granted category defined, grants only to clients.
    pub fn new(categories: &[Category], grants: &[Grant]) -> Result<Self, String> {
        let mut of_method = HashMap::new();
        for category in categories {
            for method in &category.methods {
                if let Some(other) = of_method.insert(method.clone(), category.name.clone()) {
                    return Err(format!(
                        "{method} is in two data categories: {other} and {}",
                        category.name
                    ));
                }
            }
        }
        let known: BTreeSet<&str> = categories.iter().map(|c| c.name.as_str()).collect();
        let mut exact: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut any_client = BTreeSet::new();
        for grant in grants {
            if let Some(unknown) = grant
                .categories
                .iter()
                .find(|c| !known.contains(c.as_str()))
            {
                return Err(format!("grant of an undefined data category {unknown:?}"));
            }
            for pattern in &grant.callers {
                let target = if pattern == "client:*" {
                    &mut any_client
                } else if matches!(Caller::from_name(pattern), Some(Caller::Client(_))) {
                    exact.entry(pattern.clone()).or_default()
                } else {
                    return Err(format!(
                        "data categories are granted to clients (client:<name> or client:*), not {pattern:?}"
                    ));
                };
                target.extend(grant.categories.iter().cloned());
            }
        }
        Ok(Self {
            of_method,
            exact,
            any_client,
        })
    }

    /// The category a method touches, if any.
    pub fn of(&self, path: &str) -> Option<&str> {
        self.of_method.get(path).map(String::as_str)
    }

    /// Whether `caller` may touch what `path` touches: methods outside every category and
    /// callers other than clients always; a client when its most specific grant (its own,
    /// else `client:*`'s) names the method's category.
    pub fn permit(&self, path: &str, caller: &Caller) -> bool {
        let Some(category) = self.of(path) else {
            return true;
        };
        if !matches!(caller, Caller::Client(_)) {
            return true;
        }
        self.exact
            .get(&caller.to_string())
            .unwrap_or(&self.any_client)
            .contains(category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BILLING: &str = "/pdm.identity.v1.IdentityService/GetBillingContact";
    const TICKETS: &str = "/pdm.identity.v1.IdentityService/ListSupportTickets";

    fn categories() -> Categories {
        Categories::new(
            &[
                Category {
                    name: "billing".into(),
                    methods: vec![BILLING.into()],
                },
                Category {
                    name: "support".into(),
                    methods: vec![TICKETS.into()],
                },
            ],
            &[
                Grant {
                    callers: vec!["client:*".into()],
                    categories: vec!["billing".into(), "support".into()],
                },
                Grant {
                    callers: vec!["client:payments".into()],
                    categories: vec!["billing".into()],
                },
            ],
        )
        .unwrap_or_default()
    }

    #[test]
    fn a_client_with_its_own_grant_gets_only_that() {
        let c = categories();
        let payments = Caller::Client("payments".into());
        assert!(c.permit(BILLING, &payments));
        assert!(
            !c.permit(TICKETS, &payments),
            "a billing client gets no tickets"
        );
        let web = Caller::Client("web".into());
        assert!(c.permit(BILLING, &web) && c.permit(TICKETS, &web));
    }

    #[test]
    fn uncategorised_methods_and_non_clients_pass() {
        let c = categories();
        let payments = Caller::Client("payments".into());
        assert!(c.permit("/pdm.consent.v1.ConsentService/ListPurposes", &payments));
        assert!(c.permit(TICKETS, &Caller::Admin));
        assert!(c.permit(TICKETS, &Caller::Service("rights".into())));
    }

    #[test]
    fn bad_grants_are_refused_at_load() {
        let twice = Categories::new(
            &[
                Category {
                    name: "a".into(),
                    methods: vec![BILLING.into()],
                },
                Category {
                    name: "b".into(),
                    methods: vec![BILLING.into()],
                },
            ],
            &[],
        );
        assert!(twice.is_err());
        let undefined = Categories::new(
            &[],
            &[Grant {
                callers: vec!["client:*".into()],
                categories: vec!["nope".into()],
            }],
        );
        assert!(undefined.is_err());
        let to_a_service = Categories::new(
            &[Category {
                name: "a".into(),
                methods: vec![BILLING.into()],
            }],
            &[Grant {
                callers: vec!["rights".into()],
                categories: vec!["a".into()],
            }],
        );
        assert!(to_a_service.is_err());
    }
}
