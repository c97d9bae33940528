package org.infusionbridge.sandbox;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.infusionbridge.sandbox.auth.AuthSettings;
import org.infusionbridge.sandbox.auth.BearerTokenInterceptor;
import org.infusionbridge.sandbox.auth.SmartConfigurationFilter;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import java.util.Map;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.core.env.Environment;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * Minimal HAPI FHIR R4 JPA server for integration tests: H2 in memory, no Hibernate Search,
 * rest-hook subscriptions, $validate against the core R4 profiles.
 *
 * <p>Settings come from {@code application.yaml} ({@code sandbox.*} and {@code spring.*} keys); the
 * port is {@code server.port}, which defaults to {@code ${hapi.port}} / env {@code HAPI_PORT} / 8080.
 */
@SpringBootApplication(
		exclude = {
			ElasticsearchRestClientAutoConfiguration.class,
			FlywayAutoConfiguration.class,
			HibernateJpaAutoConfiguration.class,
			QuartzAutoConfiguration.class,
			ThymeleafAutoConfiguration.class
		})
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionChannelConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class
})
public class HapiSandboxApplication {

	private static final Logger ourLog = LoggerFactory.getLogger(HapiSandboxApplication.class);

	public static void main(String[] args) {
		SpringApplication.run(HapiSandboxApplication.class, args);
	}

	private static int intProp(Environment env, String key, int dflt) {
		return env.getProperty(key, Integer.class, dflt);
	}

	@Bean
	public JpaStorageSettings jpaStorageSettings(Environment env) {
		JpaStorageSettings s = new JpaStorageSettings();
		// A fresh search every time: cached result reuse gives stale results right after writes.
		s.setReuseCachedSearchResultsForMillis(null);
		// The EHR tests PUT resources with their own ids (possibly purely numeric).
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		s.setAllowMultipleDelete(true);
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);
		s.setAllowExternalReferences(true);
		s.setHibernateSearchIndexFullText(false);
		s.setHibernateSearchIndexSearchParams(false);
		s.setFetchSizeDefaultMaximum(intProp(env, "sandbox.max-page-size", 200));
		return s;
	}

	@Bean
	public SubscriptionSettings subscriptionSettings(Environment env) {
		SubscriptionSettings s = new SubscriptionSettings();
		s.addSupportedSubscriptionType(org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType.RESTHOOK);
		s.setSubscriptionIntervalInMs(env.getProperty("sandbox.subscription-interval-ms", Long.class, 1000L));
		s.setSubscriptionChangeQueuedImmediately(true);
		s.setEnableInMemorySubscriptionMatching(true);
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** SubscriptionProcessorConfig wants an e-mail sender even though only rest-hook is enabled. */
	@Bean
	public IEmailSender emailSender() {
		return details -> ourLog.warn("E-mail subscriptions are not supported by this sandbox");
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource,
			Environment env) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(dataSource);
		Map<String, String> props = Binder.get(env)
				.bind("spring.jpa.properties", Bindable.mapOf(String.class, String.class))
				.orElse(Map.of());
		Map<String, Object> target = emf.getJpaPropertyMap();
		target.putAll(props);
		target.putIfAbsent("hibernate.dialect", "ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect");
		target.putIfAbsent("hibernate.hbm2ddl.auto", "update");
		target.putIfAbsent("hibernate.search.enabled", "false");
		target.putIfAbsent("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		ourLog.info("Hibernate properties: {}", target);
		return emf;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		JpaTransactionManager tm = new JpaTransactionManager();
		tm.setEntityManagerFactory(entityManagerFactory);
		return tm;
	}

	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviderFactory,
			IJpaSystemProvider systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			Environment env) {
		RestfulServer server = new RestfulServer(systemDao.getContext());
		server.registerProviders(resourceProviderFactory.createProviders());
		server.registerProvider(systemProvider);
		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("HAPI FHIR R4 sandbox (H2 in memory)");
		server.setServerConformanceProvider(capabilities);
		pagingProvider.setDefaultPageSize(intProp(env, "sandbox.default-page-size", 20));
		pagingProvider.setMaximumPageSize(intProp(env, "sandbox.max-page-size", 200));
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		AuthSettings auth = AuthSettings.from(env);
		if (auth != null) {
			server.registerInterceptor(new BearerTokenInterceptor(auth, systemDao.getContext()));
			ourLog.info("bearer tokens required: issuer {}, audience {}", auth.issuer(), auth.audience());
		}
		return server;
	}

	/** {@code /fhir/.well-known/smart-configuration}, only while tokens are required. */
	@Bean
	public FilterRegistrationBean<SmartConfigurationFilter> smartConfigurationFilter(Environment env) {
		AuthSettings auth = AuthSettings.from(env);
		FilterRegistrationBean<SmartConfigurationFilter> reg =
				new FilterRegistrationBean<>(new SmartConfigurationFilter(auth));
		reg.addUrlPatterns("/fhir/.well-known/smart-configuration");
		reg.setEnabled(auth != null);
		return reg;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServletRegistration(RestfulServer server) {
		ServletRegistrationBean<RestfulServer> reg = new ServletRegistrationBean<>(server, "/fhir/*");
		reg.setName("fhir");
		reg.setLoadOnStartup(1);
		return reg;
	}
}
