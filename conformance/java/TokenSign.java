import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.util.Arrays;
import java.util.Collections;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * Java SunPKCS11 against CollabVault: configure the provider from a config file, log in
 * through the PKCS11 KeyStore, generate an EC P-256 key pair on the token, sign with
 * SHA256withECDSA on the token and verify with the default provider; then ECDH against a
 * SunEC key and AES-GCM on the token; with an alias, also signs with that keystore entry's token key and verifies with
 * its certificate. Prints one `step: ok` line per step; any failure throws (exit status 1).
 *
 * Usage: java TokenSign <sunpkcs11.cfg> <user-pin> [alias]
 */
public final class TokenSign {
    public static void main(String[] args) throws Exception {
        if (args.length != 2 && args.length != 3) {
            System.err.println("usage: java TokenSign <sunpkcs11.cfg> <user-pin> [alias]");
            System.exit(2);
        }
        Provider p11 = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p11);
        System.out.println("provider: " + p11.getName() + " " + p11.getInfo());

        KeyStore ks = KeyStore.getInstance("PKCS11", p11);
        ks.load(null, args[1].toCharArray());
        System.out.println("login: ok (" + ks.size() + " entries)");

        KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", p11);
        kpg.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair kp = kpg.generateKeyPair();
        PrivateKey priv = kp.getPrivate();
        PublicKey pub = kp.getPublic();
        System.out.println("ec-keygen: ok (" + priv.getClass().getSimpleName() + ", " + pub.getFormat() + ")");
        if (priv.getEncoded() != null) {
            throw new AssertionError("the token's private key exported its encoding");
        }

        byte[] message = "signed on the token, verified by the JDK".getBytes("UTF-8");
        Signature signer = Signature.getInstance("SHA256withECDSA", p11);
        signer.initSign(priv);
        signer.update(message);
        byte[] sig = signer.sign();
        System.out.println("sign: ok (" + sig.length + "-byte DER signature)");

        // Verify with the JDK's own provider (SunEC), not the token.
        PublicKey softPub = java.security.KeyFactory.getInstance("EC")
                .generatePublic(new java.security.spec.X509EncodedKeySpec(pub.getEncoded()));
        Signature verifier = Signature.getInstance("SHA256withECDSA", "SunEC");
        verifier.initVerify(softPub);
        verifier.update(message);
        if (!verifier.verify(sig)) {
            throw new AssertionError("SunEC rejected the token's signature");
        }
        System.out.println("verify-sunec: ok");

        // And the token verifies its own signature, and rejects a tampered message.
        Signature tokenVerifier = Signature.getInstance("SHA256withECDSA", p11);
        tokenVerifier.initVerify(pub);
        tokenVerifier.update(message);
        if (!tokenVerifier.verify(sig)) {
            throw new AssertionError("the token rejected its own signature");
        }
        tokenVerifier.initVerify(pub);
        byte[] tampered = message.clone();
        tampered[0] ^= 1;
        tokenVerifier.update(tampered);
        if (tokenVerifier.verify(sig)) {
            throw new AssertionError("the token accepted a signature over a tampered message");
        }
        System.out.println("verify-token: ok");

        // ECDH (CKM_ECDH1_DERIVE) on the token against a SunEC key; the provider reads the
        // derived secret, which the config's generic-secret template leaves extractable.
        KeyPairGenerator softKpg = KeyPairGenerator.getInstance("EC", "SunEC");
        softKpg.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair peer = softKpg.generateKeyPair();
        javax.crypto.KeyAgreement tokenKa = javax.crypto.KeyAgreement.getInstance("ECDH", p11);
        tokenKa.init(priv);
        tokenKa.doPhase(peer.getPublic(), true);
        javax.crypto.KeyAgreement softKa = javax.crypto.KeyAgreement.getInstance("ECDH", "SunEC");
        softKa.init(peer.getPrivate());
        softKa.doPhase(softPub, true);
        if (!Arrays.equals(tokenKa.generateSecret(), softKa.generateSecret())) {
            throw new AssertionError("ECDH secrets differ");
        }
        System.out.println("ecdh: ok");

        // AES-GCM on the token (CKM_AES_KEY_GEN, CKM_AES_GCM). One doFinal per message: Java
        // 17's P11AEADCipher drops the doFinal input after an update() (a JDK bug).
        KeyGenerator kg = KeyGenerator.getInstance("AES", p11);
        kg.init(256);
        SecretKey aes = kg.generateKey();
        byte[] iv = new byte[12];
        new SecureRandom().nextBytes(iv);
        byte[] aad = "header".getBytes("UTF-8");
        byte[] plain = "a secret the token keeps sealed".getBytes("UTF-8");
        Cipher enc = Cipher.getInstance("AES/GCM/NoPadding", p11);
        enc.init(Cipher.ENCRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        enc.updateAAD(aad);
        byte[] ct = enc.doFinal(plain);
        Cipher dec = Cipher.getInstance("AES/GCM/NoPadding", p11);
        dec.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        dec.updateAAD(aad);
        byte[] back = dec.doFinal(ct);
        if (ct.length != plain.length + 16 || !Arrays.equals(plain, back)) {
            throw new AssertionError("AES-GCM round trip differs");
        }
        ct[0] ^= 1;
        dec.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        dec.updateAAD(aad);
        try {
            dec.doFinal(ct);
            throw new AssertionError("AES-GCM accepted a tampered ciphertext");
        } catch (javax.crypto.AEADBadTagException expected) {
            // the tag check failed, as it must
        }
        System.out.println("aes-gcm: ok");

        System.out.println("aliases: " + Collections.list(ks.aliases()));
        if (args.length == 3) {
            // A persistent token key found through the KeyStore (CKA_ID/CKA_LABEL = alias).
            PrivateKey stored = (PrivateKey) ks.getKey(args[2], null);
            java.security.cert.Certificate cert = ks.getCertificate(args[2]);
            if (stored == null || cert == null) {
                throw new AssertionError("no key entry " + args[2]);
            }
            signer.initSign(stored);
            signer.update(message);
            byte[] sig2 = signer.sign();
            verifier.initVerify(cert.getPublicKey());
            verifier.update(message);
            if (!verifier.verify(sig2)) {
                throw new AssertionError("SunEC rejected the signature of keystore entry " + args[2]);
            }
            System.out.println("keystore-entry-sign: ok (" + args[2] + ")");
        }
    }
}
