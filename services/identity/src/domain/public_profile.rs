//! Policy, "How we collect and use your personal information": "we use the name and
//! picture from your account to identify you to other users of our services." Other users
//! see a display name and the photo, nothing else; the display name is the first name and
//! the last name's initial, enough to tell colleagues apart without handing every other
//! user the full name (data minimisation).

/// Longest display name, in characters: a 100-character first name, a space, an initial
/// and a full stop.
pub const MAX_CHARS: usize = 103;

/// "Ada" and "Lovelace" → "Ada L.". The initial is the last name's first character (a
/// combining accent after it is dropped); an empty last name gives the first name alone.
pub fn display_name(first_name: &str, last_name: &str) -> String {
    let first = first_name.trim();
    match last_name.trim().chars().next() {
        Some(initial) => format!("{first} {initial}."),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_users_see_the_first_name_and_the_last_names_initial() {
        // Policy: "we use the name and picture from your account to identify you to other
        // users": the name, kept to what identifies.
        assert_eq!(display_name("Ada", "Lovelace"), "Ada L.");
        assert_eq!(display_name("Zoë", "Ørsted"), "Zoë Ø.");
        assert_eq!(display_name("Ada", ""), "Ada");
        assert!(!display_name("Ada", "Lovelace").contains("Lovelace"));
    }

    #[test]
    fn the_longest_names_stay_within_the_limit() {
        let name = display_name(&"é".repeat(100), &"ß".repeat(100));
        assert_eq!(name.chars().count(), MAX_CHARS);
    }
}
