"""RADIUS function (PostgreSQL): everything an Access-Request needs from the database, in one call

FreeRADIUS sends every query as plain text, so PostgreSQL plans each one afresh, and the stock policy
asks three to five queries per request (check items, reply items, the user's groups, each group's
check and reply items) plus one more for Simultaneous-Use. One PL/pgSQL function answers the check
items (NT-Password), the devices connected now against the device limit, and the VLAN for the access
point asking, and keeps its plans for the life of FreeRADIUS's connection. (SQLite plans cheaply: its
queries.conf keeps the query inline.)

Revision ID: 0006_radius_check
Revises: 0005_nas_unique
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_radius_check"
down_revision: str | None = "0005_nas_unique"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK_FUNCTION = """
CREATE OR REPLACE FUNCTION occupant_radius_check(
    p_username text, p_nas_identifier text, p_calling_station_id text, p_stale_after_seconds integer
)
RETURNS TABLE (id bigint, username text, attribute text, value text, op text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    item record;
    device_limit integer;
    connected bigint;
BEGIN
    -- The check items (NT-Password), as in FreeRADIUS's stock radcheck query, but Simultaneous-Use:
    -- the device limit is answered here, not by a second query in the session section.
    FOR item IN
        SELECT c.id, c.username, c.attribute, c.value, c.op
        FROM radcheck c
        WHERE c.username = p_username
        ORDER BY c.id
    LOOP
        IF item.attribute = 'Simultaneous-Use' THEN
            device_limit := item.value::integer;
        ELSE
            id := item.id;
            username := item.username;
            attribute := item.attribute;
            value := item.value;
            op := item.op;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF device_limit IS NULL THEN  -- no usable account: nothing more to say
        RETURN;
    END IF;
    -- Devices connected now: open sessions, except the device asking again (same Calling-Station-Id,
    -- e.g. roaming) and sessions silent for longer than a NAS sending interim updates ever is.
    SELECT COUNT(*) INTO connected
    FROM radacct a
    WHERE a.username = p_username
        AND a.acctstoptime IS NULL
        AND (p_calling_station_id = '' OR COALESCE(a.callingstationid, '') <> p_calling_station_id)
        AND (p_stale_after_seconds <= 0
            OR COALESCE(a.acctupdatetime, a.acctstarttime)
                > NOW() - make_interval(secs => p_stale_after_seconds));
    RETURN QUERY VALUES
        (0::bigint, p_username, 'Tmp-Integer-0'::text, connected::text, ':='::text),
        (0::bigint, p_username, 'Tmp-Integer-1'::text, device_limit::text, ':='::text);
    -- The VLAN (the policy moves it to the reply): the radgroupreply items of the user's group for the
    -- site this NAS-Identifier belongs to (home:<operator>:<site> or guest:<operator>:<site>, written by
    -- Occupant's radius.sync). None: a site the occupier cannot use.
    RETURN QUERY
        SELECT gr.id::bigint, g.username::text, gr.attribute::text, gr.value::text, gr.op::text
        FROM site_nas n
        JOIN sites s ON s.id = n.site_id
        JOIN radusergroup g ON g.username = p_username
            AND g.groupname IN ('home:' || s.operator_id || ':' || s.code,
                                'guest:' || s.operator_id || ':' || s.code)
        JOIN radgroupreply gr ON gr.groupname = g.groupname
        WHERE n.identifier = p_nas_identifier
        ORDER BY g.priority, gr.id;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECK_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS occupant_radius_check(text, text, text, integer)")
