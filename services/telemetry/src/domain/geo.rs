//! A coarse location from an offline IP database: a CSV of `network,country,region` rows
//! (CIDR networks, ISO country codes), loaded at start. Only truncated addresses are ever
//! looked up.

use std::net::IpAddr;

/// A location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// ISO country code.
    pub country: String,
    /// Region (may be empty).
    pub region: String,
}

/// The database: ranges sorted by start.
#[derive(Debug, Clone, Default)]
pub struct GeoDb {
    v4: Vec<(u32, u32, Location)>,
    v6: Vec<(u128, u128, Location)>,
}

fn network(cidr: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr}: not a CIDR network"))?;
    let ip: IpAddr = addr.parse().map_err(|_| format!("{cidr}: bad address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{cidr}: bad prefix length"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("{cidr}: prefix longer than {max}"));
    }
    Ok((ip, len))
}

impl GeoDb {
    /// Parses the CSV (a header line starting with `network` is skipped; `#` comments too).
    pub fn parse(csv: &str) -> Result<Self, String> {
        let mut db = Self::default();
        for (n, line) in csv.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("network") {
                continue;
            }
            let mut cols = line.split(',').map(str::trim);
            let (Some(cidr), Some(country)) = (cols.next(), cols.next()) else {
                return Err(format!("line {}: expected network,country[,region]", n + 1));
            };
            let location = Location {
                country: country.to_ascii_uppercase(),
                region: cols.next().unwrap_or_default().to_owned(),
            };
            match network(cidr).map_err(|e| format!("line {}: {e}", n + 1))? {
                (IpAddr::V4(ip), len) => {
                    let start = u32::from(ip) & mask32(len);
                    db.v4.push((start, start | !mask32(len), location));
                }
                (IpAddr::V6(ip), len) => {
                    let start = u128::from(ip) & mask128(len);
                    db.v6.push((start, start | !mask128(len), location));
                }
            }
        }
        db.v4.sort_by_key(|r| r.0);
        db.v6.sort_by_key(|r| r.0);
        Ok(db)
    }

    /// The location of an address, the most specific network winning.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Location> {
        match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => find(&self.v6, u128::from(v6)),
        }
    }

    /// Networks loaded.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

fn find<T: Ord + Copy>(ranges: &[(T, T, Location)], ip: T) -> Option<&Location> {
    let candidates = &ranges[..ranges.partition_point(|r| r.0 <= ip)];
    candidates
        .iter()
        .filter(|(start, end, _)| *start <= ip && ip <= *end)
        .min_by_key(|(start, end, _)| (*end, std::cmp::Reverse(*start)))
        .map(|(_, _, loc)| loc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "network,country,region\n203.0.113.0/24,GB,England\n203.0.0.0/16,AU,\n2001:db8::/32,DE,Berlin\n";

    #[test]
    fn the_most_specific_network_wins() {
        let db = GeoDb::parse(CSV).unwrap_or_default();
        let gb = db.lookup("203.0.113.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(gb.map(|l| l.country.as_str()), Some("GB"));
        let au = db.lookup("203.0.7.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(au.map(|l| l.country.as_str()), Some("AU"));
        let de = db.lookup("2001:db8:1::".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(de.map(|l| l.region.as_str()), Some("Berlin"));
        assert!(
            db.lookup("198.51.100.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
                .is_none()
        );
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        assert!(
            GeoDb::parse("10.0.0.0/33,GB")
                .expect_err("bad prefix")
                .contains("line 1")
        );
        assert!(GeoDb::parse("nonsense").is_err());
    }
}
