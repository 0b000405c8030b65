# Sidekiq on respq, unchanged: jobs pushed with Sidekiq's client (now, and later with
# perform_in) and run by the real `sidekiq` server process. respq stands where Redis
# would: Sidekiq fetches with BRPOP and moves due jobs out of its schedule set with a
# Lua script (SCRIPT LOAD + EVALSHA), which respq runs as Redis does.
#
#   ruby examples/ruby/sidekiq_mail.rb [count] [delay]   # push count jobs now (default 10)
#                                                        # and one due delay s later (5)
#   sidekiq -r ./examples/ruby/sidekiq_mail.rb           # the server: runs them; Ctrl-C stops it
#
# The same file is the app (the job class and the Redis settings, loaded by `sidekiq -r`)
# and, run with ruby, the producer. Needs Sidekiq 6 (Debian: apt install ruby-sidekiq;
# or gem install sidekiq -v '~> 6.4').
#
# Environment: RESPQ_HOST, RESPQ_PORT (default 127.0.0.1:6380); each job "sends" its mail
# by appending a JSON line to SIDEKIQ_MAIL_LOG (default: sidekiq-mail.log in the system
# temp directory).
require "json"
require "sidekiq"
require "sidekiq/api"
require "tmpdir"

# redis-rb 4.8 warns about every call Sidekiq 6.4 makes the 4.x way.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

REDIS = { url: "redis://#{ENV.fetch('RESPQ_HOST', '127.0.0.1')}:#{ENV.fetch('RESPQ_PORT', '6380')}/0" }.freeze

Sidekiq.configure_client { |config| config.redis = REDIS }
Sidekiq.configure_server do |config|
  config.redis = REDIS
  # Look for due scheduled jobs about every second (Sidekiq's default: every 5 s, after
  # a first wait of 10-15 s), so that perform_in jobs run close to their time.
  config.options[:poll_interval_average] = 1
end

# The job: what an app would put in app/workers/welcome_mail.rb.
class WelcomeMail
  include Sidekiq::Worker

  def perform(to, subject)
    log = ENV.fetch("SIDEKIQ_MAIL_LOG", File.join(Dir.tmpdir, "sidekiq-mail.log"))
    line = JSON.generate("to" => to, "subject" => subject, "jid" => jid, "at" => Time.now.to_f)
    File.open(log, "a") { |f| f.write(line + "\n") }  # one write: lines from threads never mix
    logger.info "sent #{subject.inspect} to #{to}"
  end
end

if $PROGRAM_NAME == __FILE__
  count = Integer(ARGV[0] || 10)
  delay = Float(ARGV[1] || 5)
  started = Time.now
  count.times { |i| WelcomeMail.perform_async("user#{i}@example.com", "Welcome aboard") }
  WelcomeMail.perform_in(delay, "reminder@example.com", "Still there?")
  printf("Pushed %d jobs and 1 due in %g s in %.1f ms; %d enqueued, %d scheduled\n", count, delay,
         (Time.now - started) * 1000, Sidekiq::Queue.new("default").size, Sidekiq::ScheduledSet.new.size)
end
