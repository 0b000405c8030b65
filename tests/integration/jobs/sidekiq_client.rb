# The producer side of test_jobs_sidekiq.py: Sidekiq's own client and API, unchanged,
# against REDIS_URL. Usage: ruby sidekiq_client.rb <action> [args]; prints one JSON line.
require "digest/sha1"
require "json"
require "sidekiq"
require "sidekiq/api"
require "sidekiq/scheduled"
require_relative "sidekiq_worker"

out = {}
case ARGV[0]
when "push"         # push N: N jobs now, one with a hash payload, one that fails once
  n = Integer(ARGV[1])
  out["jids"] = (1..n).map { |i| RecordJob.perform_async("now-#{i}") }
  out["critical"] = CriticalJob.perform_async("crit", { "n" => 7 })
  out["flaky"] = FlakyJob.perform_async("flaky-1")
  out["bulk"] = Sidekiq::Client.push_bulk("class" => RecordJob, "args" => [["bulk-1"], ["bulk-2"]])
when "push_more"    # push_more N: N more jobs now
  out["jids"] = (1..Integer(ARGV[1])).map { |i| RecordJob.perform_async("more-#{i}") }
when "schedule"     # schedule TAG SECONDS: one job due SECONDS from now
  at = Time.now.to_f + Float(ARGV[2])
  out["jid"] = RecordJob.perform_at(at, ARGV[1])
  out["at"] = at
when "stats"        # what Sidekiq's API (as its Web UI shows it) says about the sets
  stats = Sidekiq::Stats.new
  out["processed"] = stats.processed
  out["failed"] = stats.failed
  out["enqueued"] = stats.enqueued
  out["scheduled"] = Sidekiq::ScheduledSet.new.size
  out["retry"] = Sidekiq::RetrySet.new.size
  out["dead"] = Sidekiq::DeadSet.new.size
  out["queues"] = Sidekiq::Queue.all.map { |q| [q.name, q.size] }.to_h
  out["processes"] = Sidekiq::ProcessSet.new.map { |p| p["identity"] }
  out["zpopbyscore_sha"] = Digest::SHA1.hexdigest(Sidekiq::Scheduled::Enq::LUA_ZPOPBYSCORE)
else
  abort "unknown action #{ARGV[0].inspect}"
end
puts JSON.generate(out)
