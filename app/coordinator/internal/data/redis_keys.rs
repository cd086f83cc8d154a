//! Where the Redis store's keys live: the transactions are spread over shards, each shard a key
//! prefix with its own hash tag. A transaction's keys and the indexes that list it (the poller's
//! queue, the `all` index, the expiry index) share its shard's tag, so every script touches one
//! cluster slot and stays atomic, and the shards spread over a cluster's masters. Small global
//! data (topics, the health probe, the id counter of several shards) sits under the prefix.
//!
//! With one shard (the default on a single node) the shard's prefix is the prefix (`{a}`): the
//! layout DTM uses. With N > 1, shard `s` of prefix `{a}` (or `a`) is `{a:s}`, and a gid's shard
//! is its FNV-1a hash modulo N — so N is fixed for the life of the data.

/// The key layout of one store.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
    shards: Vec<String>,
}

impl Layout {
    /// `shards` shard prefixes derived from `prefix` (at least one).
    pub fn new(prefix: &str, shards: u32) -> Layout {
        let shards = if shards <= 1 {
            vec![prefix.to_owned()]
        } else {
            let bare = prefix.trim_start_matches('{').trim_end_matches('}');
            (0..shards).map(|s| format!("{{{bare}:{s}}}")).collect()
        };
        Layout {
            prefix: prefix.to_owned(),
            shards,
        }
    }

    /// How many shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// The shard that holds `gid`.
    pub fn shard_of(&self, gid: &str) -> usize {
        // FNV-1a: stable across processes and versions, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in gid.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % self.shards.len() as u64) as usize
    }

    /// Shard `shard`'s prefix (the scripts that find gids in an index build keys from it).
    pub fn shard_prefix(&self, shard: usize) -> &str {
        &self.shards[shard]
    }

    /// `<shard>_<kind>_<gid>`: one of a transaction's keys (`g`, `b`, `bs`).
    pub fn key(&self, kind: &str, gid: &str) -> String {
        format!("{}_{kind}_{gid}", self.shards[self.shard_of(gid)])
    }

    /// `<shard>_<name>`: one of a shard's indexes (`u`, `all`, `f`; `id` with one shard).
    pub fn index(&self, shard: usize, name: &str) -> String {
        format!("{}_{name}", self.shards[shard])
    }

    /// `<prefix>_<name>`: global data (`kv_topics`, `probe`, `id` with several shards).
    pub fn global(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// Whether every shard's prefix holds a hash tag (a cluster needs it: a script's keys must
    /// share one slot).
    pub fn tagged(&self) -> bool {
        self.shards.iter().all(|p| {
            p.find('{')
                .is_some_and(|o| p[o + 1..].find('}').is_some_and(|c| c > 0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_is_the_prefix_itself_as_dtm_lays_it_out() {
        let l = Layout::new("{a}", 1);
        assert_eq!(l.key("g", "gid1"), "{a}_g_gid1");
        assert_eq!(l.index(0, "u"), "{a}_u");
        assert_eq!(l.global("kv_topics"), "{a}_kv_topics");
        assert!(l.tagged());
        assert!(!Layout::new("dtm", 1).tagged());
    }

    #[test]
    fn shards_have_their_own_tags_and_a_gid_stays_in_its_shard() {
        let l = Layout::new("{a}", 4);
        assert_eq!(l.shard_prefix(3), "{a:3}");
        assert_eq!(Layout::new("a", 4).shard_prefix(0), "{a:0}");
        let s = l.shard_of("gid1");
        assert_eq!(l.key("bs", "gid1"), format!("{{a:{s}}}_bs_gid1"));
        assert_eq!(l.shard_of("gid1"), s, "stable");
        let mut used = [0; 4];
        for i in 0..400 {
            used[l.shard_of(&format!("g{i}"))] += 1;
        }
        assert!(used.iter().all(|&n| n > 50), "{used:?}");
        assert!(l.tagged());
    }
}
