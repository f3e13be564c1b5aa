//! Who may do what in a room: one pure function, the source of
//! `docs/permissions.md`. Visibility (a private room or a direct message does
//! not exist for outsiders) is decided before this, by `Hub::visible_room`.

use super::hub::RoomRole;

/// The one acting, as seen from a room.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    /// The server administrator may do everything everywhere (but read
    /// other people's direct messages: those are never visible to them).
    pub server_admin: bool,
    /// The actor's role in the room, if a member.
    pub role: Option<RoomRole>,
    /// The room is a direct conversation: its two members talk and delete
    /// their own messages; nothing else applies there, for anyone.
    pub direct: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add a user to the room (private rooms: the only way in).
    AddMember,
    /// Kick or ban a member whose role is given.
    Remove(RoomRole),
    /// Lift a ban.
    Unban,
    /// Delete a message; `own` when the actor wrote it.
    DeleteMessage {
        own: bool,
    },
    /// Change topic or visibility.
    EditSettings,
    /// Make a member admin or member again, or hand ownership over.
    SetRole,
    DeleteRoom,
    /// Read history, send, typing.
    Participate,
}

pub fn allowed(actor: Actor, action: Action) -> bool {
    use RoomRole::*;
    if actor.direct {
        let member = actor.role.is_some();
        return member && matches!(action, Action::Participate | Action::DeleteMessage { own: true });
    }
    if actor.server_admin {
        // Even the administrator cannot remove an owner: hand ownership over first.
        return !matches!(action, Action::Remove(Owner));
    }
    let Some(role) = actor.role else { return false };
    match action {
        Action::Participate => true,
        Action::DeleteMessage { own } => own || matches!(role, Owner | Admin),
        Action::AddMember | Action::Unban | Action::EditSettings => matches!(role, Owner | Admin),
        // Admins remove members; only the owner removes admins; nobody the owner.
        Action::Remove(target) => match target {
            Owner => false,
            Admin => role == Owner,
            Member => matches!(role, Owner | Admin),
        },
        Action::SetRole | Action::DeleteRoom => role == Owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RoomRole::*;

    const ACTIONS: [Action; 10] = [
        Action::AddMember,
        Action::Remove(Owner),
        Action::Remove(Admin),
        Action::Remove(Member),
        Action::Unban,
        Action::DeleteMessage { own: true },
        Action::DeleteMessage { own: false },
        Action::EditSettings,
        Action::SetRole,
        Action::DeleteRoom,
    ];

    fn row(actor: Actor) -> Vec<bool> {
        ACTIONS.iter().map(|a| allowed(actor, *a)).collect()
    }

    #[test]
    fn the_permission_table_of_docs_permissions_md() {
        let admin = Actor { server_admin: true, role: None, direct: false };
        let owner = Actor { server_admin: false, role: Some(Owner), direct: false };
        let room_admin = Actor { server_admin: false, role: Some(Admin), direct: false };
        let member = Actor { server_admin: false, role: Some(Member), direct: false };
        let outsider = Actor { server_admin: false, role: None, direct: false };
        //                   add    rm-own rm-adm rm-mem unban  del-own del-any edit   roles  delete
        assert_eq!(row(admin), [true, false, true, true, true, true, true, true, true, true]);
        assert_eq!(row(owner), [true, false, true, true, true, true, true, true, true, true]);
        assert_eq!(row(room_admin), [true, false, false, true, true, true, true, true, false, false]);
        assert_eq!(row(member), [false, false, false, false, false, true, false, false, false, false]);
        assert_eq!(row(outsider), [false; 10]);
        assert!(allowed(member, Action::Participate));
        assert!(!allowed(outsider, Action::Participate));
        // In a direct conversation: talk and delete one's own messages, nothing else.
        let dm = Actor { server_admin: false, role: Some(Member), direct: true };
        assert_eq!(row(dm), [false, false, false, false, false, true, false, false, false, false]);
        assert!(allowed(dm, Action::Participate));
        assert!(!allowed(Actor { role: None, ..dm }, Action::Participate));
    }
}
