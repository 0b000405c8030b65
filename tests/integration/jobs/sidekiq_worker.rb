# Sidekiq jobs for test_jobs_sidekiq.py, loaded by the real `sidekiq -r` server and by
# sidekiq_client.rb. Each run of a job appends one line to $JOBS_LOG (one write call,
# O_APPEND, so lines from the server's threads never interleave):
#   <class> <tag> <epoch seconds, float> <attempt>
require "sidekiq"

# ruby-redis 4.8 warns on every call Sidekiq 6.4 makes the 4.x way (BRPOP's positional
# timeout, SADD's boolean reply): keep the log to Sidekiq's own lines.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module JobLog
  def self.record(*fields)
    File.open(ENV.fetch("JOBS_LOG"), "a") { |f| f.write(fields.join(" ") + "\n") }
  end
end

# Runs once, records its tag and when it ran.
class RecordJob
  include Sidekiq::Worker

  def perform(tag)
    JobLog.record("RecordJob", tag, format("%.6f", Time.now.to_f), 1)
  end
end

# Fails on its first run, succeeds on the second: the retry comes back through the
# retry set (a sorted set scored by time) after one second.
class FlakyJob
  include Sidekiq::Worker
  sidekiq_options retry: 2
  sidekiq_retry_in { |_count, _exception| 1 }

  def perform(tag)
    attempt = Sidekiq.redis { |r| r.incr("flaky:#{tag}") }
    JobLog.record("FlakyJob", tag, format("%.6f", Time.now.to_f), attempt)
    raise "attempt #{attempt} of #{tag} fails on purpose" if attempt == 1
  end
end

# Sent to the "critical" queue, which the server polls before "default".
class CriticalJob
  include Sidekiq::Worker
  sidekiq_options queue: "critical"

  def perform(tag, payload)
    JobLog.record("CriticalJob", tag, format("%.6f", Time.now.to_f), payload.fetch("n"))
  end
end
