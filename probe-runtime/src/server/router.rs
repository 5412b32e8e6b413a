//! Which service and method a call's name routes to, with and without a `Service:` prefix.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::ServeError;
use crate::service::Dispatch;

/// One service and the names of its methods.
struct Entry {
    service: Arc<dyn Dispatch>,
    methods: HashSet<&'static str>,
}

/// The services on one port, by name.
///
/// With more than one service every call names its service, Apache `TMultiplexedProtocol`
/// style: `Service:method`, except calls to the default service, which may use plain `method`
/// names (Apache's `TMultiplexedProcessor.registerDefault`). With exactly one service, it is the
/// default.
pub(super) struct Router {
    services: HashMap<&'static str, Entry>,
    /// The service plain names go to: the one named default, else the only one.
    default: Option<&'static str>,
}

/// Where a call goes.
pub(super) struct Route<'a> {
    /// The service.
    pub(super) service: &'a Arc<dyn Dispatch>,
    /// Where the method name starts in the name the caller sent: after `Service:`, or 0.
    pub(super) method_at: usize,
}

impl Router {
    /// A router over `services`, whose names must differ; plain method names go to `default`, or
    /// to the only service.
    pub(super) fn new(services: Vec<Arc<dyn Dispatch>>, default: Option<&str>) -> Result<Router, ServeError> {
        if services.is_empty() {
            return Err(ServeError::NoService);
        }
        let default = match default {
            Some(name) => {
                Some(services.iter().map(|s| s.service_name()).find(|s| *s == name).ok_or_else(|| {
                    ServeError::UnknownDefaultService {
                        name: name.to_owned(),
                        served: services.iter().map(|s| s.service_name()).collect::<Vec<_>>().join(", "),
                    }
                })?)
            }
            None if services.len() == 1 => services.first().map(|s| s.service_name()),
            None => None,
        };
        let mut by_name = HashMap::with_capacity(services.len());
        for service in services {
            let name = service.service_name();
            let methods = service.methods().iter().map(|m| m.name).collect();
            if by_name.insert(name, Entry { service, methods }).is_some() {
                return Err(ServeError::DuplicateService(name.to_owned()));
            }
        }
        Ok(Router { services: by_name, default })
    }

    /// The service names, sorted.
    pub(super) fn service_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.services.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Routes a call named `name`; `None` if no service here has that method.
    pub(super) fn route(&self, name: &str) -> Option<Route<'_>> {
        let (service, method, method_at) = match name.split_once(':') {
            Some((service, method)) => (service, method, service.len() + 1),
            None => (self.default?, name, 0),
        };
        let entry = self.services.get(service)?;
        entry.methods.contains(method).then_some(Route { service: &entry.service, method_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::MethodInfo;
    use crate::service::test_support::FakeService;

    const METHODS: &[MethodInfo] = &[MethodInfo { name: "say", oneway: false, idempotent: false }];

    /// A service `name` with the one method `say`.
    fn named(name: &'static str) -> Arc<dyn Dispatch> {
        Arc::new(FakeService::new(name, METHODS))
    }

    fn route(router: &Router, name: &str) -> Option<(&'static str, usize)> {
        router.route(name).map(|r| (r.service.service_name(), r.method_at))
    }

    #[test]
    fn one_service_takes_plain_and_prefixed_names() -> Result<(), ServeError> {
        let router = Router::new(vec![named("Demo")], None)?;
        assert_eq!(route(&router, "say"), Some(("Demo", 0)));
        assert_eq!(route(&router, "Demo:say"), Some(("Demo", 5)));
        assert_eq!(route(&router, "Other:say"), None);
        assert_eq!(route(&router, "shout"), None);
        assert_eq!(route(&router, "Demo:"), None);
        Ok(())
    }

    #[test]
    fn several_services_need_prefixes() -> Result<(), ServeError> {
        let router = Router::new(vec![named("A"), named("B")], None)?;
        assert_eq!(route(&router, "say"), None);
        assert_eq!(route(&router, "B:say"), Some(("B", 2)));
        assert_eq!(router.service_names(), ["A", "B"]);
        Ok(())
    }

    #[test]
    fn a_default_service_takes_plain_names_beside_prefixed_ones() -> Result<(), ServeError> {
        let router = Router::new(vec![named("A"), named("B")], Some("B"))?;
        assert_eq!(route(&router, "say"), Some(("B", 0)));
        assert_eq!(route(&router, "A:say"), Some(("A", 2)));
        let unknown = Router::new(vec![named("A"), named("B")], Some("C"));
        assert!(
            matches!(&unknown, Err(ServeError::UnknownDefaultService { name, served }) if name == "C" && served.contains('A')),
            "{:?}",
            unknown.err()
        );
        Ok(())
    }

    #[test]
    fn names_must_differ_and_exist() {
        let twice = Router::new(vec![named("A"), named("A")], None);
        assert!(matches!(twice, Err(ServeError::DuplicateService(n)) if n == "A"));
        assert!(matches!(Router::new(Vec::new(), None), Err(ServeError::NoService)));
    }
}
