-- A broadcast whose every speaker reached a final state (done, rejected, failed, no_answer,
-- expired, cancelled) is `completed`, with the time the last of them got there.

ALTER TABLE broadcasts DROP CONSTRAINT broadcasts_status_check;
ALTER TABLE broadcasts ADD CONSTRAINT broadcasts_status_check
    CHECK (status IN ('new', 'active', 'completed', 'cancelled'));
ALTER TABLE broadcasts ADD COLUMN completed_at timestamptz;

UPDATE broadcasts b SET status = 'completed', completed_at = f.last
FROM (SELECT broadcast_id, max(finished_at) AS last
      FROM broadcast_deliveries
      GROUP BY broadcast_id
      HAVING bool_and(state IN ('done', 'rejected', 'failed', 'no_answer', 'expired',
                                'cancelled'))) f
WHERE b.broadcast_id = f.broadcast_id AND b.status = 'active';

CREATE OR REPLACE VIEW broadcast_report AS
SELECT b.broadcast_id,
       b.created_at,
       b.created_by,
       b.priority,
       b.scope_label,
       b.status,
       b.expires_at,
       count(d.device_id) AS speakers,
       count(*) FILTER (WHERE d.state IN ('accepted', 'done')) AS confirmed,
       count(*) FILTER (WHERE d.state = 'queued') AS queued,
       count(*) FILTER (WHERE d.state = 'held') AS held,
       count(*) FILTER (WHERE d.state = 'offline') AS offline,
       count(*) FILTER (WHERE d.state = 'sent') AS sent,
       count(*) FILTER (WHERE d.state = 'accepted') AS accepted,
       count(*) FILTER (WHERE d.state = 'done') AS done,
       count(*) FILTER (WHERE d.state = 'rejected') AS rejected,
       count(*) FILTER (WHERE d.state = 'failed') AS failed,
       count(*) FILTER (WHERE d.state = 'no_answer') AS no_answer,
       count(*) FILTER (WHERE d.state = 'expired') AS expired,
       count(*) FILTER (WHERE d.state = 'cancelled') AS cancelled,
       b.creator_role,
       coalesce(b.text, b.audio_url) AS what,
       b.completed_at
FROM broadcasts b
LEFT JOIN broadcast_deliveries d ON d.broadcast_id = b.broadcast_id
GROUP BY b.broadcast_id;
