/*
 * HubAcls.java: applies the hub's ACL file (config/acls.conf) to a Kafka cluster
 * with the broker's own Admin client. Run through scripts/hub-acls, which finds
 * Java and the Kafka client jars; it is a single-file program (java HubAcls.java).
 *
 * Why Java: the Kafka Admin API is the broker's own tooling. Debian 12's
 * librdkafka (2.0.2) cannot express transactional-id ACLs, and its
 * python3-confluent-kafka (1.7.0) has no ACL calls at all.
 *
 *   apply FILE [--prune] [--dry-run]   create every grant of FILE (existing ones are
 *                                      kept); --prune deletes the grants of FILE's
 *                                      principals that FILE does not list
 *   check FILE                         parse only, print the bindings
 *   list                               every ACL binding on the cluster
 *   scram-set USER FILE                set USER's SCRAM-SHA-512 password to the first
 *                                      line of FILE (creates the user if need be): the
 *                                      password never shows on a command line
 * Options: --bootstrap-server HOST:PORT, --command-config FILE (client properties:
 * security.protocol, ssl.truststore.*, sasl.mechanism, sasl.jaas.config).
 * Exit status: 0 done, 1 the cluster refused or failed, 2 bad usage or file.
 */
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public final class HubAcls {
    private static final int EXIT_FAILURE = 1, EXIT_USAGE = 2;

    /** A bad ACL file or command line: the message already says where. */
    private static final class UsageError extends Exception {
        UsageError(String message) {
            super(message);
        }
    }

    /** The principals a file names, in order, and its bindings. */
    private record AclFile(Set<String> principals, Set<AclBinding> bindings) {
    }

    private static ResourceType resourceType(String word, String where) throws UsageError {
        switch (word) {
        case "topic":
            return ResourceType.TOPIC;
        case "group":
            return ResourceType.GROUP;
        case "transactional-id":
            return ResourceType.TRANSACTIONAL_ID;
        case "cluster":
            return ResourceType.CLUSTER;
        default:
            throw new UsageError(where + ": resource type '" + word
                    + "' must be topic, group, transactional-id or cluster");
        }
    }

    private static AclOperation operation(String word, String where) throws UsageError {
        try {
            AclOperation op = AclOperation.valueOf(word.toUpperCase(Locale.ROOT).replace('-', '_'));
            if (op != AclOperation.ANY && op != AclOperation.UNKNOWN)
                return op;
        } catch (IllegalArgumentException e) {
            // fall through to the message
        }
        throw new UsageError(where + ": unknown operation '" + word + "'");
    }

    /** Parses the ACL file: [principal] sections of "<operations> <type> <name>" lines. */
    static AclFile parse(Path path) throws IOException, UsageError {
        Set<String> principals = new LinkedHashSet<>();
        Set<AclBinding> bindings = new LinkedHashSet<>();
        String principal = null;
        int lineno = 0;
        for (String raw : Files.readAllLines(path)) {
            lineno++;
            String where = path + ":" + lineno;
            String line = raw.replaceFirst("#.*", "").trim();
            if (line.isEmpty())
                continue;
            if (line.startsWith("[")) {
                if (!line.matches("\\[[A-Za-z0-9][A-Za-z0-9._-]*\\]"))
                    throw new UsageError(where + ": a section is [principal-name] (letters, digits, . _ -)");
                principal = "User:" + line.substring(1, line.length() - 1);
                if (!principals.add(principal))
                    throw new UsageError(where + ": section " + line + " appears twice");
                continue;
            }
            if (principal == null)
                throw new UsageError(where + ": a grant before the first [principal] section");
            String[] f = line.split("\\s+");
            if (f.length != 3)
                throw new UsageError(where + ": a grant is '<operations> <resource type> <name>'");
            ResourceType type = resourceType(f[1], where);
            String name = f[2];
            PatternType pattern = PatternType.LITERAL;
            if (name.length() > 1 && name.endsWith("*")) {
                pattern = PatternType.PREFIXED;
                name = name.substring(0, name.length() - 1);
            }
            if (type == ResourceType.CLUSTER && !name.equals("kafka-cluster"))
                throw new UsageError(where + ": the cluster resource is named kafka-cluster");
            for (String op : f[0].split(",")) {
                AccessControlEntry ace = new AccessControlEntry(principal, "*", operation(op, where),
                        AclPermissionType.ALLOW);
                bindings.add(new AclBinding(new ResourcePattern(type, name, pattern), ace));
            }
        }
        if (bindings.isEmpty())
            throw new UsageError(path + ": no grants");
        return new AclFile(principals, bindings);
    }

    static String describe(AclBinding b) {
        ResourcePattern p = b.pattern();
        AccessControlEntry e = b.entry();
        return String.format("%-26s %-5s %-16s %-16s %s%s", e.principal(), e.permissionType(),
                e.operation(), p.resourceType(), p.name(),
                p.patternType() == PatternType.PREFIXED ? "*" : "");
    }

    private static void print(Collection<AclBinding> bindings, String prefix) {
        Set<String> lines = new TreeSet<>();
        for (AclBinding b : bindings)
            lines.add(prefix + describe(b));
        lines.forEach(System.out::println);
    }

    private static Admin admin(String bootstrap, String commandConfig) throws IOException, UsageError {
        if (bootstrap == null)
            throw new UsageError("--bootstrap-server is required");
        Properties props = new Properties();
        if (commandConfig != null) {
            try (InputStream in = Files.newInputStream(Path.of(commandConfig))) {
                props.load(in);
            }
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putIfAbsent(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "30000");
        props.putIfAbsent(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        return Admin.create(props);
    }

    private static int apply(Admin admin, AclFile file, boolean prune) throws Exception {
        admin.createAcls(file.bindings()).all().get(60, TimeUnit.SECONDS);
        System.out.printf("acls: %d grants for %d principals present%n", file.bindings().size(),
                file.principals().size());
        if (!prune)
            return 0;
        List<AclBindingFilter> stale = new ArrayList<>();
        for (AclBinding b : admin.describeAcls(AclBindingFilter.ANY).values().get(60, TimeUnit.SECONDS)) {
            if (file.principals().contains(b.entry().principal()) && !file.bindings().contains(b)) {
                stale.add(b.toFilter());
                System.out.println("removing " + describe(b));
            }
        }
        if (!stale.isEmpty())
            admin.deleteAcls(stale).all().get(60, TimeUnit.SECONDS);
        System.out.printf("acls: %d stale grants removed%n", stale.size());
        return 0;
    }

    /** Sets user's SCRAM-SHA-512 password (8192 iterations) to the first line of file. */
    private static int scramSet(Admin admin, String user, Path file) throws Exception {
        String password = Files.readAllLines(file).stream().findFirst().orElse("").strip();
        if (password.isEmpty())
            throw new UsageError(file + ": no password on its first line");
        admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user,
                new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password)))
                .all().get(60, TimeUnit.SECONDS);
        System.out.println("scram: password of " + user + " set (SCRAM-SHA-512)");
        return 0;
    }

    private static void usage() {
        System.err.println("usage: hub-acls [--bootstrap-server HOST:PORT] [--command-config FILE]\n"
                + "                apply FILE [--prune] [--dry-run] | check FILE | list\n"
                + "                | scram-set USER PASSWORD-FILE");
    }

    public static void main(String[] args) {
        String bootstrap = null, commandConfig = null, command = null, file = null, file2 = null;
        boolean prune = false, dryRun = false;
        int status;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("--bootstrap-server") && i + 1 < args.length)
                    bootstrap = args[++i];
                else if (a.equals("--command-config") && i + 1 < args.length)
                    commandConfig = args[++i];
                else if (a.equals("--prune"))
                    prune = true;
                else if (a.equals("--dry-run"))
                    dryRun = true;
                else if (a.equals("-h") || a.equals("--help")) {
                    usage();
                    System.exit(0);
                } else if (a.startsWith("-"))
                    throw new UsageError("unknown option " + a);
                else if (command == null)
                    command = a;
                else if (file == null)
                    file = a;
                else if (file2 == null && command.equals("scram-set"))
                    file2 = a;
                else
                    throw new UsageError("unexpected argument " + a);
            }
            if (command == null)
                throw new UsageError("a command is needed: apply, check, list or scram-set");
            switch (command) {
            case "check":
            case "apply": {
                if (file == null)
                    throw new UsageError(command + " needs an ACL file");
                AclFile acls = parse(Path.of(file));
                if (command.equals("check") || dryRun) {
                    print(acls.bindings(), "");
                    status = 0;
                    break;
                }
                try (Admin admin = admin(bootstrap, commandConfig)) {
                    status = apply(admin, acls, prune);
                }
                break;
            }
            case "scram-set":
                if (file == null || file2 == null)
                    throw new UsageError("scram-set needs a user and a password file");
                try (Admin admin = admin(bootstrap, commandConfig)) {
                    status = scramSet(admin, file, Path.of(file2));
                }
                break;
            case "list":
                try (Admin admin = admin(bootstrap, commandConfig)) {
                    print(admin.describeAcls(AclBindingFilter.ANY).values().get(60, TimeUnit.SECONDS), "");
                }
                status = 0;
                break;
            default:
                throw new UsageError("unknown command '" + command + "'");
            }
        } catch (UsageError e) {
            System.err.println("hub-acls: " + e.getMessage());
            usage();
            status = EXIT_USAGE;
        } catch (ExecutionException e) {
            System.err.println("hub-acls: the cluster refused: " + e.getCause());
            status = EXIT_FAILURE;
        } catch (Exception e) {
            System.err.println("hub-acls: " + e);
            status = EXIT_FAILURE;
        }
        System.exit(status);
    }
}
