-- A device whose kind becomes, or stops being, gateway keeps its login and secret but
-- changes rights at the broker: the access daemon applies a 'role' change (no secret).
ALTER TABLE broker_access_queue DROP CONSTRAINT broker_access_queue_action_check;
ALTER TABLE broker_access_queue ADD CONSTRAINT broker_access_queue_action_check
    CHECK (action IN ('grant', 'revoke', 'role'));
