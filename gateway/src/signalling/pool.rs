//! A pool: a named set of endpoints that are told about each other and may signal each other.

use super::endpoint::EndpointId;

/// How a pool came to exist, which decides whether it outlives its last member.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PoolOrigin {
    /// Created by an endpoint joining it (public mode); removed when it empties.
    Joined,
    /// Created by the operator; stays until the operator closes it.
    Operator,
}

impl PoolOrigin {
    /// A short stable name, for metrics labels and the admin API.
    pub fn as_str(&self) -> &'static str {
        match self {
            PoolOrigin::Joined => "joined",
            PoolOrigin::Operator => "operator",
        }
    }
}

/// A pool and its members, in the order they joined.
#[derive(Clone, Debug)]
pub struct Pool {
    pub origin: PoolOrigin,
    pub members: Vec<EndpointId>,
}

impl Pool {
    pub fn new(origin: PoolOrigin) -> Self {
        Pool {
            origin,
            members: Vec::new(),
        }
    }

    pub fn contains(&self, id: EndpointId) -> bool {
        self.members.contains(&id)
    }

    /// Members other than `id`, in join order.
    pub fn others(&self, id: EndpointId) -> impl Iterator<Item = EndpointId> + '_ {
        self.members.iter().copied().filter(move |m| *m != id)
    }

    pub fn remove(&mut self, id: EndpointId) {
        self.members.retain(|m| *m != id);
    }

    /// True when the pool should disappear now that it has no members.
    pub fn is_disposable(&self) -> bool {
        self.members.is_empty() && self.origin == PoolOrigin::Joined
    }
}
